"""Alert expectations: deadlines read from the rule files, and the verdict on what Prometheus showed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chaos import runner
from chaos.alerts import SLACK_SECONDS, Expectations, Matcher, Rules, judge
from chaos.prometheus import RULE_FILES

RULES = {
    "groups": [
        {
            "name": "g",
            "rules": [
                {"record": "slo:ratio_rate5m", "expr": "sum(rate(x_total[5m]))"},
                {"record": "slo:ratio_rate1h", "expr": "sum(rate(x_total[1h]))"},
                {"alert": "Down", "expr": "up == 0", "for": "1m"},
                {"alert": "Errors", "expr": "sum(rate(e_total[5m])) / sum(rate(r_total[5m])) > 0.05", "for": "2m"},
                {
                    "alert": "Burn",
                    "expr": "slo:ratio_rate1h > 0.01 and slo:ratio_rate5m > 0.01",
                    "for": "2m",
                    "labels": {"severity": "page", "service": "users"},
                },
                {"alert": "Burn", "expr": "slo:ratio_rate1h > 0.001", "for": "1h", "labels": {"severity": "ticket"}},
                {"alert": "Backlog", "expr": "max(outbox_oldest_unsent_age_seconds) > 60", "for": "5m"},
            ],
        }
    ]
}


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(RULES))
    return Rules.load([path])


def test_a_deadline_is_the_rules_for_plus_the_time_its_expression_needs(rules: Rules) -> None:
    assert rules.deadline(Matcher("Down"))["seconds"] == 60 + SLACK_SECONDS
    # A 5m window full of the fault reads the fault's own ratio.
    assert rules.deadline(Matcher("Errors", {"service": "users"}))["seconds"] == 120 + 300 + SLACK_SECONDS
    # Through the recording rules it reads; the matcher's labels pick the page, not the ticket.
    page = rules.deadline(Matcher("Burn", {"severity": "page"}))
    assert (page["for_seconds"], page["expression_true_within_seconds"]) == (120, 300)
    # An age threshold needs that many seconds before the expression holds at all.
    assert rules.deadline(Matcher("Backlog"))["seconds"] == 300 + 60 + SLACK_SECONDS
    with pytest.raises(ValueError, match="no rule"):
        rules.deadline(Matcher("NoSuchAlert"))


def test_every_alert_an_experiment_names_has_a_rule_in_the_repositorys_files() -> None:
    rules = Rules.load(RULE_FILES)
    for name, path in runner.discover().items():
        expectations = Expectations.of(json.loads(path.read_text()))
        assert expectations.silent, f"{name} names no alert that must stay silent"
        for matcher in expectations.fire:
            assert rules.deadline(matcher)["seconds"] > 0, name


def _seen(at: float, state: str, active_at: float, **labels: str) -> dict[str, object]:
    return {"at": at, "state": state, "active_at": active_at, "labels": labels}


def test_an_alert_that_fired_in_time_passes_and_an_unrelated_page_fails(rules: Rules) -> None:
    expectations = Expectations(
        fire=(Matcher("Down", {"job": "enrollments"}),), silent=(Matcher(".+", {"job": "users"}),)
    )
    observed = [
        _seen(101.0, "pending", 100.5, alertname="Down", job="enrollments"),
        _seen(161.0, "firing", 100.5, alertname="Down", job="enrollments"),
        _seen(50.0, "firing", 10.0, alertname="Down", job="users"),  # inherited from before the experiment
    ]
    verdict = judge(expectations, observed, rules, started_at=90.0, fault_at=100.0, awaited=True)
    (expected,) = verdict["expected"]
    assert (expected["pending_at"], expected["firing_at"], expected["fired_after_seconds"]) == (100.5, 161.0, 61.0)
    assert verdict["reasons"] == []

    observed.append(_seen(170.0, "firing", 120.0, alertname="Down", job="users"))
    verdict = judge(expectations, observed, rules, started_at=90.0, fault_at=100.0, awaited=True)
    assert verdict["reasons"] == ["unrelated alert fired: Down{alertname=Down,job=users}"]


def test_an_alert_that_never_fired_or_fired_late_fails_when_awaited(rules: Rules) -> None:
    expectations = Expectations(fire=(Matcher("Down"),))
    never = judge(expectations, [], rules, started_at=0.0, fault_at=1.0, awaited=True)
    assert never["reasons"] == [f"Down{{}} did not fire within {60 + SLACK_SECONDS:.0f}s of the fault"]
    late = [_seen(200.0, "firing", 100.0, alertname="Down")]
    assert (
        "fired after 199s" in judge(expectations, late, rules, started_at=0.0, fault_at=1.0, awaited=True)["reasons"][0]
    )
    assert judge(expectations, [], rules, started_at=0.0, fault_at=1.0, awaited=False)["reasons"] == []


def test_an_experiment_that_names_alerts_holds_its_fault_until_they_fire() -> None:
    breaks = {"kill_service", "stop_server", "cut_dependency", "inject_latency", "inject_errors"}
    mends = {"restart_service", "start_server", "restore_dependency", "clear_faults"}
    for name, path in runner.discover().items():
        experiment = json.loads(path.read_text())
        funcs = [a["provider"]["func"] for a in experiment["method"]]
        if not Expectations.of(experiment).fire:
            continue
        waits = funcs.index("await_alerts")
        assert any(f in breaks for f in funcs[:waits]), f"{name} waits for alerts before breaking anything"
        assert not any(f in mends for f in funcs[:waits]), f"{name} mends the fault before its alerts fire"
