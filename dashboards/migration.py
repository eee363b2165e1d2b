"""The strangler-fig migration: per prefix, how traffic splits between monolith and service, and
how the two sides compare on latency and errors while it does (phase 6: 10% -> 25% -> 50% -> 100%).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metric_names as m
from dashboards.panels import RATE, graph, label_variable, new_dashboard, query, single
from dashboards.promql import error_ratio, quantile, sum_rate

PREFIX = 'prefix=~"$prefix"'


def migration_dashboard() -> dashboard.Dashboard:
    """Builds the migration dashboard."""
    served = sum_rate(m.GATEWAY_REQUESTS, RATE, ("prefix",), PREFIX, 'side="service"')
    total = sum_rate(m.GATEWAY_REQUESTS, RATE, ("prefix",), PREFIX)
    board = (
        new_dashboard(
            "cerebrum-migration",
            "Cerebrum / Migration",
            "Per gateway prefix: the weight sent to the extracted service, the share it really served, "
            "and the two sides' p95 latency and 5xx share side by side. Promote a weight only while "
            "the service side is no worse than the monolith side (the SLO gate checks the same).",
            "migration",
        )
        .with_variable(label_variable("prefix", "Prefix", m.GATEWAY_REQUESTS))
        .with_row(dashboard.Row("Traffic share"))
        .with_panel(
            single(
                "Prefixes fully on the service",
                query(f"count({m.GATEWAY_TRAFFIC_WEIGHT}{{{PREFIX}}} == 100) or vector(0)"),
                width=4,
            )
        )
        .with_panel(
            graph(
                "Weight to the service: configured and observed",
                query(f"max by (prefix) ({m.GATEWAY_TRAFFIC_WEIGHT}{{{PREFIX}}})", "{{prefix}} configured"),
                query(f"100 * {served} / {total}", "{{prefix}} observed"),
                unit="percent",
                max_value=100,
                description="Observed can differ from configured at low traffic: students are assigned "
                "by a hash of their id, and keep their side while the weight holds.",
                width=20,
            )
        )
        .with_panel(
            graph(
                "Requests / s by prefix and side",
                query(sum_rate(m.GATEWAY_REQUESTS, RATE, ("prefix", "side"), PREFIX), "{{prefix}} {{side}}"),
                unit="reqps",
                stacked=True,
                width=24,
            )
        )
        .with_row(dashboard.Row("Monolith vs service"))
    )
    for side in m.SIDES:
        matcher = f'side="{side}"'
        board = board.with_panel(
            graph(
                f"p95 latency, {side} side",
                query(
                    quantile(0.95, m.GATEWAY_DURATION_BUCKET, RATE, ("prefix",), PREFIX, matcher),
                    "{{prefix}}",
                    exemplar=True,
                ),
                unit="s",
            )
        )
    for side in m.SIDES:
        matcher = f'side="{side}"'
        board = board.with_panel(
            graph(
                f"5xx share, {side} side",
                query(error_ratio(m.GATEWAY_REQUESTS, RATE, ("prefix",), PREFIX, matcher), "{{prefix}}"),
                unit="percentunit",
            )
        )
    return shadow_row(board)


def shadow_row(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """Shadow traffic: mirrored requests per prefix and outcome, and how often the two sides' answers differ."""
    route = 'route=~"$prefix"'
    compared = sum_rate(m.SHADOW_REQUESTS, RATE, ("route",), route, 'outcome="compared"')
    return (
        board.with_row(dashboard.Row("Shadow traffic"))
        .with_panel(
            graph(
                "Answers that differ, after noise",
                query(f"{sum_rate(m.SHADOW_DIFFS, RATE, ('route',), route)} / {compared}", "{{route}}"),
                unit="percentunit",
                description="Share of mirrored requests whose answer from the other side differed beyond the "
                "route's learned noise. `cerebrum shadow report` names the fields; the phase-6 gate fails a "
                "step above 1% (slo/gates/shadow.yaml).",
                width=12,
            )
        )
        .with_panel(
            graph(
                "Differing answers / s by field class",
                query(sum_rate(m.SHADOW_DIFFS, RATE, ("route", "field_class"), route), "{{route}} {{field_class}}"),
                unit="reqps",
                stacked=True,
                width=12,
            )
        )
        .with_panel(
            graph(
                "Mirrored requests / s by outcome",
                query(sum_rate(m.SHADOW_REQUESTS, RATE, ("route", "outcome"), route), "{{route}} {{outcome}}"),
                unit="reqps",
                stacked=True,
                description="dropped: the mirror queue was full; failed / breaker_open: the other side did not "
                "answer in time or its shadow breaker is open. None of it reaches a user.",
                width=24,
            )
        )
    )
