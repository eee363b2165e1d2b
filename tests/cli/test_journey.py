"""`cerebrum demo journey`: a new student's whole path through the gateway passes on the embedded platform."""

from __future__ import annotations

import httpx
import pytest
from rich.console import Console

from cerebrum.demo import seed_academy
from cerebrum.journey import Journey, Step, run_journey
from cerebrum.journey_cli import jaeger_ui_url, journey_table
from cerebrum.platform import Platform
from tests.journeys.conftest import embedded  # noqa: F401  (the fixture)

STEPS = [
    "register",
    "log in",
    "browse the catalogue",
    "search",
    "a course",
    "enrol",
    "enrol again (refused)",
    "sandbox checkout",
    "verify the payment",
    "enrolment confirmed",
    "finish a lesson",
    "list the topics",
    "draw a test",
    "submit the test",
    "the leaderboard",
    "the notifications",
]


async def test_every_step_of_the_journey_passes(embedded: tuple[Platform, httpx.AsyncClient]) -> None:  # noqa: F811
    platform, api = embedded
    await seed_academy(platform.apps)
    result = await run_journey(api)
    failed = [(s.name, s.status, s.note) for s in result.steps if not s.ok]
    assert result.passed, failed
    assert [s.name for s in result.steps] == STEPS
    assert all(s.path.startswith("/api/") for s in result.steps), "every call goes through the gateway"
    assert all(s.trace_id and len(s.trace_id) == 32 for s in result.steps), "each call names its trace"
    assert len({s.trace_id for s in result.steps}) == len(STEPS), "one trace per request"

    console = Console(record=True, width=200, color_system="truecolor")
    console.print(journey_table(result, jaeger="http://jaeger:16686"))
    html = console.export_html(inline_styles=True)
    assert f'href="http://jaeger:16686/trace/{result.steps[0].trace_id}"' in html


async def test_a_failing_step_stops_the_journey_and_says_why(embedded: tuple[Platform, httpx.AsyncClient]) -> None:  # noqa: F811
    _, api = embedded  # no catalogue seeded: browsing finds no course
    result = await Journey(api).run()
    assert not result.passed
    assert [s.name for s in result.steps] == ["register", "log in", "browse the catalogue"]
    last: Step = result.steps[-1]
    assert last.status == 200 and not last.ok and last.note == "an empty list"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"JAEGER_UI_URL": "http://traces.example:16686/"}, "http://traces.example:16686"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:16686"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "console"}, None),
    ],
)
def test_trace_ids_link_to_jaeger_only_when_it_is_configured(environ: dict[str, str], expected: str | None) -> None:
    assert jaeger_ui_url(environ) == expected
