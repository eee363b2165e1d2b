"""promtool unit tests for every service's burn-rate alerts, on synthetic traffic.

Burns at 1,000 requests a minute: a fast burn (16x the budget) that pages at once and opens a
ticket after the ticket's hold, a slow burn (4x) that only opens a ticket, a burn within budget
(0.5x) that stays silent and leaves half the budget, and a fast burn that stopped 40 minutes ago,
whose page resolves (its short windows are clean) while its ticket holds.

Then the traffic of a quiet service: one bad request (a single slow login) and a burst of bad
requests one short of the spec's ``minimum_requests``, both 100% bad over every window and both
silent; and a real breach at 2 requests a minute, which still pages within the page's long window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slo.burn import Severity
from slo.rules import Budgeted, alert_rule, record_name
from slo.spec import LatencyObjective, ServiceSpec

PER_MINUTE = 1000
Minutes = Sequence[tuple[float, float]]
"""Per minute of the test: (requests, bad requests)."""


@dataclass(frozen=True)
class Case:
    name: str
    traffic: Callable[[Budgeted], Minutes]
    checks: tuple[tuple[str, tuple[Severity, ...]], ...]
    """(eval time, the severities firing then)."""
    all_bad_at: str | None = None
    """An eval time at which every window's ratio reads 1: only the request count keeps it quiet."""
    budget_left: float | None = None


def burning(*segments: tuple[int, float]) -> Callable[[Budgeted], Minutes]:
    """PER_MINUTE requests a minute, burning the budget at each segment's rate for its minutes."""

    def traffic(objective: Budgeted) -> Minutes:
        return [
            (PER_MINUTE, round(burn * objective.error_budget * PER_MINUTE, 6))
            for minutes, burn in segments
            for _ in range(minutes)
        ]

    return traffic


def quiet_then_bad(bad: Callable[[Budgeted], int]) -> Callable[[Budgeted], Minutes]:
    """No traffic for 30 minutes, one minute of only bad requests, then none for 70 minutes."""

    def traffic(objective: Budgeted) -> Minutes:
        count = bad(objective)
        return [(0, 0)] * 30 + [(count, count)] + [(0, 0)] * 70

    return traffic


def breach(objective: Budgeted) -> Minutes:
    """2 good requests a minute for 30 minutes, then every request bad for 75 minutes."""
    return [(2, 0)] * 30 + [(2, 2)] * 75


CASES = (
    Case(
        "fast burn pages, then opens a ticket after its hold",
        burning((90, 16.0)),
        (("20m", ("page",)), ("70m", ("page", "ticket"))),
    ),
    Case("slow burn opens a ticket only", burning((120, 4.0)), (("50m", ()), ("90m", ("ticket",)))),
    Case("burn within budget stays silent", burning((30, 0.5)), (("20m", ()),), budget_left=0.5),
    Case(
        "stopped fast burn: the page resolves, the ticket holds",
        burning((60, 16.0), (40, 0.0)),
        (("100m", ("ticket",)),),
    ),
    Case(
        "one bad request never pages",
        quiet_then_bad(lambda o: 1),
        (("35m", ()), ("60m", ()), ("95m", ())),
        all_bad_at="35m",
    ),
    Case(
        "a burst one short of minimum_requests never pages",
        quiet_then_bad(lambda o: o.minimum_requests - 1),
        (("35m", ()), ("60m", ()), ("95m", ())),
        all_bad_at="35m",
    ),
    # A breach from 30m: every budget of ours (5% or less) pages by 75m, within the 1h long
    # window; the ticket's condition holds from 31m-36m, so it fires after its 1h hold, by 96m.
    Case(
        "a real breach at 2 requests a minute pages within its window",
        breach,
        (("90m", ("page",)), ("100m", ("page", "ticket"))),
    ),
)


def _counter(per_minute: list[float]) -> str:
    """A counter's samples, one a minute, in promtool's expanding notation (``0+16x60 976+0x15``)."""
    parts: list[str] = []
    value, index = 0.0, 0
    while index < len(per_minute):
        step, run = per_minute[index], 1
        while index + run < len(per_minute) and per_minute[index + run] == step:
            run += 1
        start = value if not parts else value + step
        parts.append(f"{start:g}+{step:g}x{run if not parts else run - 1}")
        value += step * run
        index += run
    return " ".join(parts)


def _series(spec: ServiceSpec, objective: Budgeted, minutes: Minutes) -> list[dict[str, str]]:
    total = [requests for requests, _ in minutes]
    good = [round(requests - failed, 6) for requests, failed in minutes]
    bad = [failed for _, failed in minutes]
    route = objective.routes.example if objective.routes else "/synthetic"
    labels = f'service="{spec.service}",route="{route}",method="GET"'
    # Probes answer fast and never fail: they must change nothing.
    probes = f'service="{spec.service}",route="/ready",method="GET",status="200"'
    if isinstance(objective, LatencyObjective):
        # prometheus_client writes bucket bounds as Python floats: 0.1, 1.0.
        le = f'le="{objective.threshold!r}"'
        return [
            {"series": f'http_request_duration_seconds_bucket{{{labels},status="200",{le}}}', "values": _counter(good)},
            {"series": f'http_request_duration_seconds_count{{{labels},status="200"}}', "values": _counter(total)},
            {"series": f"http_request_duration_seconds_bucket{{{probes},{le}}}", "values": _counter([60] * len(total))},
            {"series": f"http_request_duration_seconds_count{{{probes}}}", "values": _counter([60] * len(total))},
        ]
    return [
        {"series": f'http_requests_total{{{labels},status="200"}}', "values": _counter(good)},
        {"series": f'http_requests_total{{{labels},status="500"}}', "values": _counter(bad)},
        {"series": f"http_requests_total{{{probes}}}", "values": _counter([60] * len(total))},
    ]


def _firing(spec: ServiceSpec, objective: Budgeted, severity: Severity) -> dict[str, Any]:
    rule = alert_rule(spec, objective, severity)
    return {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}


def _labels(spec: ServiceSpec, objective: Budgeted) -> str:
    return f'{{service="{spec.service}",slo="{objective.name}"}}'


def _ratio_checks(spec: ServiceSpec, case: Case) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for o in spec.budgeted:
        if case.all_bad_at:
            # Without the request count, both windows of the page would read 100% bad.
            checks += [
                {
                    "expr": f"{record_name(window)}{_labels(spec, o)}",
                    "eval_time": case.all_bad_at,
                    "exp_samples": [{"labels": f"{record_name(window)}{_labels(spec, o)}", "value": 1}],
                }
                for window in ("5m", "1h")
            ]
        if case.budget_left is not None:
            burn = 1 - case.budget_left
            at = case.checks[0][0]
            checks += [
                {
                    "expr": f"round(slo:error_budget_remaining:ratio{_labels(spec, o)}, 0.01)",
                    "eval_time": at,
                    "exp_samples": [{"labels": _labels(spec, o), "value": case.budget_left}],
                },
                {
                    "expr": f"round({record_name('5m')}{_labels(spec, o)}, 0.000001)",
                    "eval_time": at,
                    "exp_samples": [{"labels": _labels(spec, o), "value": round(burn * o.error_budget, 6)}],
                },
            ]
    return checks


def unit_tests(specs: dict[str, ServiceSpec]) -> dict[str, Any]:
    """One test per case, feeding every budgeted SLO of every service at once.

    Each SLO reads its own series, so the services cannot disturb each other; one test for all
    of them costs promtool a seventh of the evaluations that a test per service would (each
    evaluation runs every service's rules, as the one rules file Prometheus loads holds them).
    """
    tests: list[dict[str, Any]] = []
    budgeted = [(spec, o) for spec in specs.values() for o in spec.budgeted]
    for case in CASES:
        test: dict[str, Any] = {
            "name": case.name,
            "interval": "1m",
            "input_series": [row for spec, o in budgeted for row in _series(spec, o, case.traffic(o))],
            "alert_rule_test": [
                {
                    "eval_time": at,
                    "alertname": "SLOErrorBudgetBurn",
                    "exp_alerts": [_firing(spec, o, severity) for spec, o in budgeted for severity in severities],
                }
                for at, severities in case.checks
            ],
        }
        checks = [check for spec in specs.values() for check in _ratio_checks(spec, case)]
        if checks:
            test["promql_expr_test"] = checks
        tests.append(test)
    return {"rule_files": ["../slo_rules.yml"], "evaluation_interval": "1m", "tests": tests}
