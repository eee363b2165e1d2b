"""Platform overview: RED per service, the worst routes, and saturation (work in flight, events)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metric_names as m
from dashboards.panels import RATE, graph, label_variable, new_dashboard, query, ranking, single
from dashboards.promql import error_ratio, quantile, sum_rate

SERVICE = 'service=~"$service"'


def platform_overview() -> dashboard.Dashboard:
    """Builds the platform overview dashboard."""
    return (
        new_dashboard(
            "cerebrum-overview",
            "Cerebrum / Platform overview",
            "Requests, errors and latency of every service, the worst routes, and saturation. "
            "Click an exemplar dot on a latency or traffic graph to open its trace in Jaeger.",
            "overview",
        )
        .with_variable(label_variable("service", "Service", m.HTTP_REQUESTS))
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single(
                "Requests / s",
                query(f"sum({m.SERVICE_REQUESTS_RATE5M}{{{SERVICE}}})"),
                unit="reqps",
            )
        )
        .with_panel(
            single(
                "5xx share",
                query(error_ratio(m.HTTP_REQUESTS, "5m", (), SERVICE)),
                unit="percentunit",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
            )
        )
        .with_panel(
            single(
                "Slowest service p95",
                query(f"max({m.SERVICE_P95_5M}{{{SERVICE}}})"),
                unit="s",
                thresholds=[(None, "green"), (0.3, "orange"), (0.5, "red")],
            )
        )
        .with_panel(
            single(
                "Scrape targets down",
                query(f"count({m.UP} == 0) or vector(0)"),
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_row(dashboard.Row("RED per service"))
        .with_panel(
            graph(
                "Requests / s by service",
                query(sum_rate(m.HTTP_REQUESTS, RATE, ("service",), SERVICE), "{{service}}", exemplar=True),
                unit="reqps",
                width=8,
            )
        )
        .with_panel(
            graph(
                "5xx share by service",
                query(error_ratio(m.HTTP_REQUESTS, RATE, ("service",), SERVICE), "{{service}}"),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            graph(
                "p95 latency by service",
                query(
                    quantile(0.95, m.HTTP_DURATION_BUCKET, RATE, ("service",), SERVICE), "{{service}}", exemplar=True
                ),
                unit="s",
                width=8,
            )
        )
        .with_row(dashboard.Row("Top routes"))
        .with_panel(
            ranking(
                "Top routes by 5xx share",
                query(
                    f"topk(10, {error_ratio(m.HTTP_REQUESTS, '5m', ('service', 'route'), SERVICE)} > 0)",
                    instant=True,
                ),
                unit="percentunit",
                description="Routes are templates (/courses/{course_id}), never raw paths.",
            )
        )
        .with_panel(
            ranking(
                "Top routes by p95 latency",
                query(
                    f"topk(10, {quantile(0.95, m.HTTP_DURATION_BUCKET, '5m', ('service', 'route'), SERVICE)})",
                    instant=True,
                ),
                unit="s",
            )
        )
        .with_row(dashboard.Row("Saturation"))
        .with_panel(
            graph(
                "Requests in flight",
                query(f"sum by (service) ({m.HTTP_IN_FLIGHT}{{{SERVICE}}})", "{{service}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Events published / s (out)",
                query(sum_rate(m.EVENTS_PUBLISHED, RATE, ("service",), SERVICE), "{{service}}"),
                unit="ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Events consumed / s (in), by outcome",
                query(sum_rate(m.EVENTS_CONSUMED, RATE, ("service", "outcome"), SERVICE), "{{service}} {{outcome}}"),
                unit="ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Outbox: events waiting",
                query(f"sum by (service) ({m.OUTBOX_PENDING}{{{SERVICE}}})", "{{service}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Outbox: oldest unsent event",
                query(f"max by (service) ({m.OUTBOX_OLDEST_AGE}{{{SERVICE}}})", "{{service}}"),
                unit="s",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Rate-limit checks on the local fallback / s",
                query(sum_rate(m.RATELIMIT_FALLBACK, RATE, ("service",), SERVICE), "{{service}}"),
                unit="ops",
                description="Non-zero means Redis is unreachable and each process limits on its own.",
                width=8,
            )
        )
    )
