"""The dashboards: built from code, valid PromQL, and querying only metrics that exist."""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import yaml
from opentelemetry import trace

from cerebrum.platform import Platform
from cerebrum.registry import SERVICES as REGISTERED
from cerebrum.runner import build_platform
from dashboards import build, check, metric_names
from dashboards.__main__ import main
from dashboards.build import render_dashboard
from dashboards.capabilities import CAPABILITIES, Capabilities
from dashboards.per_service import service_dashboard
from tests.apps import FAST_HASHING
from tests.conftest import LogCapture
from tests.observability_as_code import attribution, emitted, promql
from tests.observability_as_code.attribution import Used, dead_panels, use_the_platform
from tests.observability_as_code.emitted import TARGET_LABELS, Scrape

PROVISIONING = promql.ROOT / "dashboards" / "provisioning"


@pytest.fixture(scope="module")
async def journey(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Scrape, Scrape]]:
    """Runs a student journey on the embedded platform; yields the registry before and /metrics after."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
            env.delenv(name, raising=False)
        data_dir = tmp_path_factory.mktemp("platform")
        platform: Platform = build_platform(overrides={"data_dir": data_dir, "environment": "test", **FAST_HASHING})
        before = emitted.registry_now()
        async with platform.running():
            transport = httpx.ASGITransport(app=platform, client=("198.51.100.20", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://academy") as api:
                await emitted.student_journey(platform, api)
                exposition = await api.get("/metrics", headers={"accept": "application/openmetrics-text"})
                assert exposition.status_code == 200
                yield before, Scrape.parse(exposition.text)


def all_queries() -> list[promql.Query]:
    return promql.dashboard_queries() + promql.rule_queries()


def test_committed_json_and_rules_are_what_the_code_builds() -> None:
    problems = check()
    assert not problems, "\n".join(problems) + "\nRun `python -m dashboards build` and commit the result."
    assert main(["check"]) == 0


def test_check_names_each_file_that_drifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_dir, rules = tmp_path / "json", tmp_path / "rules.yml"
    build(json_dir, rules)
    assert check(json_dir, rules) == []
    edited = json_dir / "cerebrum-overview.json"
    edited.write_text(edited.read_text().replace("Platform overview", "Overview, edited in Grafana"))
    (json_dir / "hand-made.json").write_text("{}")
    rules.unlink()
    problems = "\n".join(check(json_dir, rules))
    assert "cerebrum-overview.json: differs" in problems and "Overview, edited in Grafana" in problems
    assert "hand-made.json: no longer built" in problems
    assert "rules.yml: missing" in problems
    assert main(["nonsense"]) == 2 and "usage" in capsys.readouterr().err


def test_there_is_a_dashboard_for_each_service_and_each_view() -> None:
    uids = {board["uid"] for board in promql.dashboards().values()}
    expected = {f"cerebrum-service-{s}" for s in metric_names.SERVICES}
    expected |= {"cerebrum-overview", "cerebrum-slo", "cerebrum-migration", "cerebrum-business"}
    assert uids == expected


def test_every_panel_queries_the_chosen_prometheus() -> None:
    for name, board in promql.dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        ids = []
        for panel in promql._panels(board["panels"]):
            ids.append(panel["id"])
            if panel.get("targets"):
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, panel["title"])
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"


def test_every_query_is_valid_promql() -> None:
    queries = all_queries()
    assert len(queries) > 150
    bad = []
    for query in queries:
        try:
            promql.parse(query.expr)
        except ValueError as exc:
            bad.append(f"{query.where}: {exc}\n    {query.expr}")
    assert not bad, "PromQL that does not parse:\n" + "\n".join(bad)


def test_latency_and_traffic_graphs_ask_for_exemplars() -> None:
    for name, board in promql.dashboards().items():
        for panel in promql._panels(board["panels"]):
            for target in panel.get("targets") or []:
                raw_red = metric_names.HTTP_DURATION_BUCKET in target["expr"] or (
                    f"rate({metric_names.HTTP_REQUESTS}" in target["expr"] and "5.." not in target["expr"]
                )
                if panel["type"] == "timeseries" and raw_red:
                    assert target.get("exemplar") is True, f"{name} {panel['title']!r} shows no exemplars"


def test_every_queried_metric_is_emitted_declared_recorded_or_exported(journey: tuple[Scrape, Scrape]) -> None:
    """Each metric a dashboard or rule queries is (a) emitted by the platform during a student
    journey, (b) declared in services/ (labelled metrics idle in the journey), (c) written by a
    recording rule, or (d) scraped from an exporter. Anything else fails, naming its panels."""
    before, after = journey
    import_failures = emitted.import_all_services()
    declared = emitted.declared_series()
    moved = after.changed_since(before)
    recorded = promql.recorded_names()

    queried_by: dict[str, list[str]] = defaultdict(list)
    for query in all_queries():
        for selector in promql.selectors(query.expr):
            queried_by[selector.metric].append(query.where)

    missing, idle, pending_now_declared = {}, {}, []
    for metric, where in sorted(queried_by.items()):
        if metric in recorded or metric in metric_names.EXPORTER_METRICS or metric in moved:
            continue
        if metric in declared:
            idle[metric] = where
            if metric in metric_names.PENDING:
                pending_now_declared.append(metric)
        elif metric in metric_names.PENDING:
            idle[metric] = where
        else:
            missing[metric] = where

    def listing(found: dict[str, list[str]]) -> str:
        return "\n".join(
            f"  {metric}\n" + "".join(f"      {w}\n" for w in sorted(set(ws))) for metric, ws in found.items()
        )

    if idle:
        warnings.warn(
            "Queried metrics not emitted by the student journey (declared in code, or PENDING in "
            f"dashboards/metric_names.py; they show data once their service runs):\n{listing(idle)}",
            stacklevel=1,
        )
    assert not missing, (
        "Dashboards and rules query metrics that nothing emits, declares, records or exports:\n"
        + listing(missing)
        + (f"Modules under services/ that failed to import: {import_failures}" if import_failures else "")
    )
    assert not pending_now_declared, (
        f"{pending_now_declared} are declared in services/ now: take them out of PENDING in dashboards/metric_names.py"
    )
    # The exporter allow-list stays an allow-list: nothing in it is something our code declares.
    assert not set(metric_names.EXPORTER_METRICS) & set(declared)


def test_selectors_match_on_labels_their_metric_has() -> None:
    emitted.import_all_services()
    declared = emitted.declared_series()
    wrong = []
    for query in all_queries():
        for selector in promql.selectors(query.expr):
            labels = declared.get(selector.metric)
            if labels is None:
                continue  # recorded or exported: their labels are not ours to know
            unknown = selector.labels - labels - TARGET_LABELS
            if unknown:
                wrong.append(
                    f"{query.where}: {selector.metric} has no label {sorted(unknown)} (it has {sorted(labels)})"
                )
    assert not wrong, "\n".join(wrong)


def test_red_metrics_come_from_every_running_service(journey: tuple[Scrape, Scrape]) -> None:
    before, after = journey
    moved = after.changed_since(before)
    for metric in (metric_names.HTTP_REQUESTS, metric_names.HTTP_DURATION_BUCKET, metric_names.HTTP_DURATION_COUNT):
        services = {dict(labels).get("service") for labels in moved.get(metric, set())}
        assert {*REGISTERED, "gateway"} <= services, (
            f"{metric}: no samples from { ({*REGISTERED, 'gateway'} - services) }"
        )
    in_flight = {dict(labels).get("service") for labels in after.values[metric_names.HTTP_IN_FLIGHT]}
    assert {*REGISTERED, "gateway"} <= in_flight


def test_latency_samples_carry_trace_ids_for_exemplars(journey: tuple[Scrape, Scrape]) -> None:
    _, after = journey
    exemplars = after.exemplars.get(metric_names.HTTP_DURATION_BUCKET, [])
    assert exemplars and all(re.fullmatch(r"[0-9a-f]{32}", e["trace_id"]) for e in exemplars)


def test_provisioning_links_exemplars_and_log_lines_to_jaeger(logs: LogCapture) -> None:
    sources = {d["type"]: d for d in yaml.safe_load((PROVISIONING / "datasources.yaml").read_text())["datasources"]}
    jaeger = sources["jaeger"]["uid"]
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [{"name": "trace_id", "datasourceUid": jaeger}]
    assert sources["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == sources["loki"]["uid"]

    (derived,) = sources["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == jaeger and derived["url"] == "$${__value.raw}"
    with trace.get_tracer("tests").start_as_current_span("a request") as span:
        structlog.get_logger("tests").info("enrolment_confirmed", course="genetics")
        trace_id = format(span.get_span_context().trace_id, "032x")
    line = next(raw for raw in logs.text().splitlines() if "enrolment_confirmed" in raw)
    match = re.search(derived["matcherRegex"], line)
    assert match is not None and match.group(1) == trace_id, line

    (provider,) = yaml.safe_load((PROVISIONING / "dashboards.yaml").read_text())["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False


@pytest.fixture(scope="module")
def used(tmp_path_factory: pytest.TempPathFactory) -> Used:
    """The embedded platform used end to end in a process of its own (tests/observability_as_code/usage.py)."""
    return use_the_platform(tmp_path_factory.mktemp("usage"))


def _service_board(service: str) -> dict[str, Any]:
    return promql.dashboards()[f"cerebrum-service-{service}.json"]


def test_every_panel_of_a_service_dashboard_shows_what_its_service_emits(used: Used) -> None:
    emitted.import_all_services()
    declared = emitted.declared_series()
    dead = [problem for s in metric_names.SERVICES for problem in dead_panels(_service_board(s), s, used, declared)]
    assert not dead, "Panels that can never show data (change dashboards/capabilities.py):\n" + "\n".join(dead)


def test_a_panel_for_something_the_service_lacks_is_caught(used: Used, monkeypatch: pytest.MonkeyPatch) -> None:
    emitted.import_all_services()
    declared = emitted.declared_series()
    monkeypatch.setitem(CAPABILITIES, "users", Capabilities(caches=("course",), publishes=True, consumes=True))
    board = json.loads(render_dashboard(service_dashboard("users").build()))
    dead = "\n".join(dead_panels(board, "users", used, declared))
    for metric in (metric_names.CACHE_REQUESTS, metric_names.EVENTS_CONSUMED, metric_names.EVENTS_DEAD_LETTERED):
        assert f"users never emits {metric}" in dead


def test_the_capability_table_says_what_each_service_does(used: Used) -> None:
    """dashboards/capabilities.py against the code and the running platform: nothing a service
    does is left off its dashboard, nothing it lacks is put on."""
    wrong = []
    for service, has in CAPABILITIES.items():
        code = attribution.code_of(service)
        seen = {
            "upstreams": used.label_values(metric_names.DEPENDENCY_REQUESTS, service, "upstream") - {"monolith"},
            "caches": used.label_values(metric_names.CACHE_REQUESTS, service, "cache"),
            "publishes": bool(used.label_values(metric_names.EVENTS_PUBLISHED, service, "event")),
            "consumes": used.consumers[service],
            "checks_sessions": used.emits(metric_names.AUTH_REVOCATION_SKIPPED, service, service_labelled=True),
        }
        if not seen["upstreams"] <= set(has.upstreams) or bool(seen["upstreams"]) != bool(has.upstreams):
            wrong.append(f"{service}: calls {sorted(seen['upstreams'])}, the table says {has.upstreams}")
        if ("ServiceClient(" in code) != bool(has.upstreams):
            wrong.append(f"{service}: builds a ServiceClient: {'ServiceClient(' in code}; upstreams {has.upstreams}")
        if not seen["caches"] <= set(has.caches) or bool(seen["caches"]) != bool(has.caches):
            wrong.append(f"{service}: caches {sorted(seen['caches'])}, the table says {has.caches}")
        records = "record_event(" in code or ").record(" in code  # a unit of work records an event
        if seen["publishes"] != has.publishes or records != has.publishes:
            wrong.append(f"{service}: publishes {seen['publishes']}, the table says {has.publishes}")
        for thing in ("consumes", "checks_sessions"):
            if seen[thing] != getattr(has, thing):
                wrong.append(f"{service}: {thing} {seen[thing]}, the table says {getattr(has, thing)}")
    assert not wrong, "dashboards/capabilities.py disagrees with the code:\n" + "\n".join(wrong)


def test_analytics_shows_events_from_clients_and_from_the_broker(used: Used) -> None:
    stored = {
        dict(labels)["source"]: value
        for labels, value in used.scrape.values[metric_names.ANALYTICS_EVENTS_INGESTED].items()
        if dict(labels)["outcome"] == "stored"
    }
    assert stored["http"] >= 1 and stored["broker"] >= 1, stored
    (panel,) = [p for p in promql._panels(_service_board("analytics")["panels"]) if "ingested" in p.get("title", "")]
    assert "sum by (source, outcome)" in panel["targets"][0]["expr"]
