"""One dashboard per service, all from one function: RED by route, dependencies, cache, events.

What only one service has (the gateway's split, the payments outcomes, ...) goes in a last row
chosen from ``EXTRAS``; everything above it is the same for every service, so that a reader who
knows one service's dashboard knows all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard, timeseries

from dashboards import metric_names as m
from dashboards.panels import RATE, breaker_states, graph, new_dashboard, query, single
from dashboards.promql import error_ratio, quantile, share, sum_rate


def service_dashboard(service: str) -> dashboard.Dashboard:
    """Builds the dashboard of one service."""
    svc = f'service="{service}"'
    board = (
        new_dashboard(
            f"cerebrum-service-{service}",
            f"Cerebrum / Service / {service}",
            f"The {service} service: traffic, errors and latency by route, its calls to other services, "
            "its cache, and its events. Exemplar dots on the graphs open the request's trace in Jaeger.",
            "service",
            service,
        )
        .with_row(dashboard.Row("Now"))
        .with_panel(single("Requests / s", query(f"sum({m.SERVICE_REQUESTS_RATE5M}{{{svc}}})"), unit="reqps"))
        .with_panel(
            single(
                "5xx share",
                query(f"sum({m.SERVICE_ERROR_RATIO_RATE5M}{{{svc}}})"),
                unit="percentunit",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
            )
        )
        .with_panel(
            single(
                "p95 latency",
                query(f"max({m.SERVICE_P95_5M}{{{svc}}})"),
                unit="s",
                thresholds=[(None, "green"), (0.3, "orange"), (0.5, "red")],
            )
        )
        .with_panel(single("In flight", query(f"sum({m.HTTP_IN_FLIGHT}{{{svc}}})")))
        .with_row(dashboard.Row("RED by route"))
        .with_panel(
            graph(
                "Requests / s by route and status",
                query(sum_rate(m.HTTP_REQUESTS, RATE, ("route", "status"), svc), "{{route}} {{status}}", exemplar=True),
                unit="reqps",
                width=8,
            )
        )
        .with_panel(
            graph(
                "5xx share by route",
                query(error_ratio(m.HTTP_REQUESTS, RATE, ("route",), svc), "{{route}}"),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            graph(
                "p95 latency by route",
                query(quantile(0.95, m.HTTP_DURATION_BUCKET, RATE, ("route",), svc), "{{route}}", exemplar=True),
                unit="s",
                width=8,
            )
        )
        .with_row(dashboard.Row("Dependencies"))
        .with_panel(
            graph(
                "Calls to other services / s, by outcome",
                query(sum_rate(m.DEPENDENCY_REQUESTS, RATE, ("upstream", "outcome"), svc), "{{upstream}} {{outcome}}"),
                unit="ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "p95 of calls to other services",
                query(
                    quantile(0.95, m.DEPENDENCY_DURATION_BUCKET, RATE, ("upstream",), svc),
                    "{{upstream}}",
                    exemplar=True,
                ),
                unit="s",
                width=8,
            )
        )
        .with_panel(
            breaker_states(
                "Circuit breakers",
                query(f"max by (upstream) ({m.CIRCUIT_BREAKER_STATE}{{{svc}}})", "{{upstream}}"),
                width=8,
            )
        )
        .with_row(dashboard.Row("Cache"))
        .with_panel(
            graph(
                "Cache hit ratio",
                query(
                    share(
                        sum_rate(m.CACHE_REQUESTS, RATE, ("cache",), svc, 'result="hit"'),
                        sum_rate(m.CACHE_REQUESTS, RATE, ("cache",), svc),
                    ),
                    "{{cache}}",
                ),
                unit="percentunit",
                max_value=1,
            )
        )
        .with_panel(
            graph(
                "Cache lookups / s",
                query(sum_rate(m.CACHE_REQUESTS, RATE, ("cache", "result"), svc), "{{cache}} {{result}}"),
                unit="ops",
            )
        )
        .with_row(dashboard.Row("Events"))
        .with_panel(
            graph(
                "Outbox: oldest unsent event",
                query(f"max({m.OUTBOX_OLDEST_AGE}{{{svc}}})", "age"),
                unit="s",
                description="The relay publishes within a second or two; a growing age means the broker "
                "refuses events (see the OutboxBacklog runbook).",
                width=6,
            )
        )
        .with_panel(graph("Outbox: events waiting", query(f"sum({m.OUTBOX_PENDING}{{{svc}}})", "waiting"), width=6))
        .with_panel(
            graph(
                "Events in and out / s",
                query(sum_rate(m.EVENTS_PUBLISHED, RATE, ("event",), svc), "published {{event}}"),
                query(sum_rate(m.EVENTS_CONSUMED, RATE, ("event", "outcome"), svc), "consumed {{event}} {{outcome}}"),
                unit="ops",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Consumer retries and dead letters",
                query(f"sum by (event) (increase({m.EVENTS_RETRIED}{{{svc}}}[{RATE}]))", "retried {{event}}"),
                query(
                    f"sum by (event) (increase({m.EVENTS_DEAD_LETTERED}{{{svc}}}[{RATE}]))", "dead-lettered {{event}}"
                ),
                width=6,
            )
        )
    )
    extras = EXTRAS.get(service)
    if extras is not None:
        board = board.with_row(dashboard.Row(f"Only in {service}"))
        for panel in extras():
            board = board.with_panel(panel)
    return board


def _users() -> list[timeseries.Panel]:
    return [
        graph("Logins / s by outcome", query(sum_rate(m.LOGINS, RATE, ("outcome",)), "{{outcome}}"), unit="ops"),
        graph(
            "Refresh tokens replayed (family revoked)",
            query(f"sum(increase({m.REFRESH_TOKEN_REUSE}[{RATE}]))", "replayed"),
            description="A rotated refresh token presented again: a stolen token, or a client bug.",
        ),
    ]


def _courses() -> list[timeseries.Panel]:
    return [
        graph(
            "Seat reservations / s by outcome",
            query(sum_rate(m.SEAT_RESERVATIONS, RATE, ("outcome",), 'service="courses"'), "{{outcome}}"),
            unit="ops",
        )
    ]


def _enrollments() -> list[timeseries.Panel]:
    return [
        graph(
            "Enrolments / s by outcome",
            query(sum_rate(m.ENROLLMENTS, RATE, ("outcome",)), "{{outcome}}"),
            unit="ops",
        ),
        graph(
            "Saga steps / s by step and outcome",
            query(sum_rate(m.SAGA_STEPS, RATE, ("step", "outcome")), "{{step}} {{outcome}}"),
            unit="ops",
        ),
    ]


def _payments() -> list[timeseries.Panel]:
    return [
        graph("Payments / s by outcome", query(sum_rate(m.PAYMENTS, RATE, ("outcome",)), "{{outcome}}"), unit="ops"),
        graph(
            "Provider webhooks / s by outcome",
            query(sum_rate(m.PAYMENT_WEBHOOKS, RATE, ("outcome",)), "{{outcome}}"),
            unit="ops",
            description="'forged' are webhooks whose signature did not verify.",
        ),
    ]


def _analytics() -> list[timeseries.Panel]:
    return [
        graph(
            "Learning events ingested / s by outcome",
            query(sum_rate(m.ANALYTICS_EVENTS_INGESTED, RATE, ("outcome",)), "{{outcome}}"),
            unit="ops",
            description="'duplicate': stored before (a client retry); harmless.",
        ),
        graph(
            "Aggregation lag",
            query(f"max({m.ANALYTICS_AGGREGATION_LAG})", "oldest event not yet in the aggregates"),
            unit="s",
        ),
    ]


def _communication() -> list[timeseries.Panel]:
    return [
        graph(
            "Notifications / s by channel and status",
            query(sum_rate(m.NOTIFICATIONS, RATE, ("channel", "status")), "{{channel}} {{status}}"),
            unit="ops",
        ),
        graph(
            "Queued, not yet sent",
            query(f"sum by (channel) ({m.NOTIFICATION_QUEUE_DEPTH})", "{{channel}}"),
        ),
        graph(
            "p95 provider send time",
            query(quantile(0.95, m.NOTIFICATION_SEND_BUCKET, RATE, ("channel",)), "{{channel}}", exemplar=True),
            unit="s",
        ),
    ]


def _assessments() -> list[timeseries.Panel]:
    return [
        graph(
            "Tests submitted / s by topic",
            query(sum_rate(m.ASSESSMENTS_SUBMITTED, RATE, ("topic",)), "{{topic}}"),
            unit="ops",
        ),
        graph(
            "Degraded while Redis is down",
            query(f"sum(increase({m.QUESTION_POOL_FALLBACK}[{RATE}]))", "questions drawn from the database"),
            query(f"sum(increase({m.LEADERBOARD_UPDATE_FAILURES}[{RATE}]))", "leaderboard updates missed"),
        ),
    ]


def _gateway() -> list[timeseries.Panel]:
    return [
        graph(
            "Requests / s by prefix and side",
            query(sum_rate(m.GATEWAY_REQUESTS, RATE, ("prefix", "side")), "{{prefix}} {{side}}"),
            unit="reqps",
        ),
        graph(
            "p95 through the gateway by prefix",
            query(quantile(0.95, m.GATEWAY_DURATION_BUCKET, RATE, ("prefix",)), "{{prefix}}", exemplar=True),
            unit="s",
        ),
        graph(
            "Sessions let through without the revocation check",
            query(sum_rate(m.AUTH_REVOCATION_SKIPPED, RATE, ("service",)), "{{service}}"),
            unit="ops",
            description="Non-zero while Redis is down: revoked sessions are not refused until it is back.",
        ),
    ]


EXTRAS: dict[str, Callable[[], list[timeseries.Panel]]] = {
    "users": _users,
    "courses": _courses,
    "enrollments": _enrollments,
    "payments": _payments,
    "analytics": _analytics,
    "communication": _communication,
    "assessments": _assessments,
    "gateway": _gateway,
}
