"""`cerebrum slo quiet`: the verdict cannot pass vacuously, and the harness pages for a real fault."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from slo.quiet import Fault, QuietPlan, run
from slo.quiet_report import judge

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="`make tools` installs prometheus")
UP = {"job": "cerebrum", "health": "up", "last_scrape": "2026-12-03T12:00:00Z", "error": ""}


def test_a_prometheus_that_saw_nothing_cannot_vouch_for_silence() -> None:
    never = {**UP, "health": "unknown", "last_scrape": "0001-01-01T00:00:00Z"}
    verdict = judge([], {"targets": [never], "requests": {"users": 0}}, started=0, locust_exit_code=0)
    assert not verdict.quiet
    assert verdict.problems == [
        "target cerebrum is unknown",
        "Prometheus counted no served request: the rules had nothing to judge",
    ]


def test_each_alert_state_is_one_row_timed_from_the_start() -> None:
    seen = {"labels": {"alertname": "HighErrorRate", "service": "courses"}, "active_at": 110.0}
    observed = [{**seen, "state": "pending"}, {**seen, "state": "pending"}, {**seen, "state": "firing"}]
    verdict = judge(observed, {"targets": [UP], "requests": {"courses": 9}}, started=100, locust_exit_code=0)
    assert [(a.alert, a.labels, a.state, a.after_seconds) for a in verdict.alerts] == [
        ("HighErrorRate", {"service": "courses"}, "firing", 10.0),
        ("HighErrorRate", {"service": "courses"}, "pending", 10.0),
    ]
    assert not verdict.quiet


@needs_prometheus
def test_the_same_harness_pages_for_a_route_that_always_fails(tmp_path: Path) -> None:
    fault = Fault(service="courses", route="/courses")
    verdict = run(QuietPlan(minutes=0.5, out=tmp_path, students=3, think=(1, 3), fault=fault), Console(quiet=True))
    assert verdict.problems == []
    paged = {(a.alert, a.labels.get("service")) for a in verdict.alerts}
    assert ("HighErrorRate", "courses") in paged
