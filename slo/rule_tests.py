"""promtool unit tests for one service's burn-rate alerts, on synthetic traffic.

Four series per budgeted SLO, 1,000 requests a minute: a fast burn (16x the budget) that pages
and opens a ticket, a slow burn (4x) that only opens a ticket, a burn within budget (0.5x) that
stays silent and leaves half the budget, and a fast burn that stopped 40 minutes ago, whose page
resolves (its short windows are clean) while its ticket holds.
"""

from __future__ import annotations

from typing import Any

from slo.burn import Severity
from slo.rules import Budgeted, alert_rule, record_name
from slo.spec import LatencyObjective, ServiceSpec

PER_MINUTE = 1000
Segments = tuple[tuple[int, float], ...]
CASES: tuple[tuple[str, Segments, str, tuple[Severity, ...]], ...] = (
    # (name, minutes at each burn rate, eval time, severities expected to fire)
    ("fast burn pages and opens a ticket", ((30, 16.0),), "20m", ("page", "ticket")),
    ("slow burn opens a ticket only", ((30, 4.0),), "20m", ("ticket",)),
    ("burn within budget stays silent", ((30, 0.5),), "20m", ()),
    ("stopped fast burn: the page resolves, the ticket holds", ((60, 16.0), (40, 0.0)), "100m", ("ticket",)),
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


def _series(spec: ServiceSpec, objective: Budgeted, segments: Segments) -> list[dict[str, str]]:
    bad = [round(burn * objective.error_budget * PER_MINUTE, 6) for minutes, burn in segments for _ in range(minutes)]
    good = [round(PER_MINUTE - b, 6) for b in bad]
    labels = f'service="{spec.service}",route="/synthetic",method="GET"'
    if isinstance(objective, LatencyObjective):
        # prometheus_client writes bucket bounds as Python floats: 0.1, 1.0.
        return [
            {
                "series": f'http_request_duration_seconds_bucket{{{labels},status="200",le="{objective.threshold!r}"}}',
                "values": _counter(good),
            },
            {
                "series": f'http_request_duration_seconds_count{{{labels},status="200"}}',
                "values": _counter([PER_MINUTE] * len(good)),
            },
        ]
    return [
        {"series": f'http_requests_total{{{labels},status="200"}}', "values": _counter(good)},
        {"series": f'http_requests_total{{{labels},status="500"}}', "values": _counter(bad)},
    ]


def _firing(spec: ServiceSpec, objective: Budgeted, severity: Severity) -> dict[str, Any]:
    rule = alert_rule(spec, objective, severity)
    return {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}


def unit_tests(spec: ServiceSpec) -> dict[str, Any]:
    """One test per case; each feeds every budgeted SLO of the service (they read different series)."""
    tests: list[dict[str, Any]] = []
    for name, segments, at, severities in CASES:
        burn = segments[0][1]
        test: dict[str, Any] = {
            "name": f"{spec.service}: {name} ({burn:g}x budget, at {at})",
            "interval": "1m",
            "input_series": [row for o in spec.budgeted for row in _series(spec, o, segments)],
            "alert_rule_test": [
                {
                    "eval_time": at,
                    "alertname": "SLOErrorBudgetBurn",
                    "exp_alerts": [_firing(spec, o, severity) for o in spec.budgeted for severity in severities],
                }
            ],
        }
        if burn < 1:
            # Burning at half the allowed rate leaves half the budget.
            test["promql_expr_test"] = [
                check
                for o in spec.budgeted
                for check in (
                    {
                        "expr": f"round(slo:error_budget_remaining:ratio{_budget_labels(spec, o)}, 0.01)",
                        "eval_time": at,
                        "exp_samples": [{"labels": _budget_labels(spec, o), "value": 0.5}],
                    },
                    {
                        "expr": f"round({record_name('5m')}{_budget_labels(spec, o)}, 0.000001)",
                        "eval_time": at,
                        "exp_samples": [{"labels": _budget_labels(spec, o), "value": round(burn * o.error_budget, 6)}],
                    },
                )
            ]
        tests.append(test)
    return {"rule_files": ["../slo_rules.yml"], "evaluation_interval": "20m", "tests": tests}


def _budget_labels(spec: ServiceSpec, objective: Budgeted) -> str:
    return f'{{service="{spec.service}",slo="{objective.name}"}}'
