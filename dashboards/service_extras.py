"""What only one service has, shown in its dashboard's last row: business metrics, the gateway's own.

Each builder takes the service's label matcher (``service="<name>"``) for the metrics that carry
one; the rest are counted by one service's code only (declared where they are counted).
"""

from __future__ import annotations

from collections.abc import Callable

from dashboards import metric_names as m
from dashboards.panels import RATE, Queryable, graph, query
from dashboards.promql import quantile, sum_rate


def _users(svc: str) -> list[Queryable]:
    return [
        graph("Logins / s by outcome", query(sum_rate(m.LOGINS, RATE, ("outcome",)), "{{outcome}}"), unit="ops"),
        graph(
            "Refresh tokens replayed (family revoked)",
            query(f"sum(increase({m.REFRESH_TOKEN_REUSE}[{RATE}]))", "replayed"),
            description="A rotated refresh token presented again: a stolen token, or a client bug.",
        ),
    ]


def _courses(svc: str) -> list[Queryable]:
    return [
        graph(
            "Seat reservations / s by outcome",
            query(sum_rate(m.SEAT_RESERVATIONS, RATE, ("outcome",), svc), "{{outcome}}"),
            unit="ops",
            width=24,
        )
    ]


def _enrollments(svc: str) -> list[Queryable]:
    return [
        graph(
            "Enrolments / s by outcome",
            query(sum_rate(m.ENROLLMENTS, RATE, ("outcome",), svc), "{{outcome}}"),
            unit="ops",
        ),
        graph(
            "Saga steps / s by step and outcome",
            query(sum_rate(m.SAGA_STEPS, RATE, ("step", "outcome"), svc), "{{step}} {{outcome}}"),
            unit="ops",
        ),
    ]


def _payments(svc: str) -> list[Queryable]:
    return [
        graph("Payments / s by outcome", query(sum_rate(m.PAYMENTS, RATE, ("outcome",)), "{{outcome}}"), unit="ops"),
        graph(
            "Provider webhooks / s by outcome",
            query(sum_rate(m.PAYMENT_WEBHOOKS, RATE, ("outcome",)), "{{outcome}}"),
            unit="ops",
            description="'forged' are webhooks whose signature did not verify.",
        ),
    ]


def _analytics(svc: str) -> list[Queryable]:
    return [
        graph(
            "Learning events ingested / s by source and outcome",
            query(sum_rate(m.ANALYTICS_EVENTS_INGESTED, RATE, ("source", "outcome"), svc), "{{source}} {{outcome}}"),
            unit="ops",
            description="'http': sent by clients (events, activity heartbeats); 'broker': the other services' "
            "events (registrations, enrolments, progress, tests, payments). 'duplicate': stored before "
            "(a client's retry); 'expired': older than the retention, not kept.",
        ),
        graph(
            "Aggregation lag",
            query(f"max({m.ANALYTICS_AGGREGATION_LAG}{{{svc}}})", "oldest event not yet in the aggregates"),
            unit="s",
        ),
    ]


def _communication(svc: str) -> list[Queryable]:
    return [
        graph(
            "Notifications / s by channel and status",
            query(sum_rate(m.NOTIFICATIONS, RATE, ("channel", "status")), "{{channel}} {{status}}"),
            unit="ops",
            width=8,
        ),
        graph(
            "Queued, not yet sent",
            query(f"sum by (channel) ({m.NOTIFICATION_QUEUE_DEPTH})", "{{channel}}"),
            width=8,
        ),
        graph(
            "p95 provider send time",
            query(quantile(0.95, m.NOTIFICATION_SEND_BUCKET, RATE, ("channel",)), "{{channel}}", exemplar=True),
            unit="s",
            width=8,
        ),
    ]


def _assessments(svc: str) -> list[Queryable]:
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


def _gateway(svc: str) -> list[Queryable]:
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
            "Reads answered from the gateway's copies / s",
            query(sum_rate(m.GATEWAY_EDGE_COPIES, RATE, ("result",)), "{{result}}"),
            unit="ops",
            width=24,
            description="hit: answered at the gateway; changed: the copy's generation moved on (a change went "
            "through the service), so the read went on; kept: a stamped reply kept.",
        ),
    ]


EXTRAS: dict[str, Callable[[str], list[Queryable]]] = {
    "users": _users,
    "courses": _courses,
    "enrollments": _enrollments,
    "payments": _payments,
    "analytics": _analytics,
    "communication": _communication,
    "assessments": _assessments,
    "gateway": _gateway,
}
