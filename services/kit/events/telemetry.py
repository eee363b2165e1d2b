"""Metrics and trace context for events: published, consumed, retried, dead-lettered, outbox age."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context

from observability.metrics import counter, gauge

PUBLISHED = counter("cerebrum_events_published_total", "Events handed to the broker.", ("service", "event"))
CONSUMED = counter(
    "cerebrum_events_consumed_total", "Events received by a consumer, by outcome.", ("service", "event", "outcome")
)
RETRIED = counter("cerebrum_events_retried_total", "Event deliveries scheduled for another try.", ("service", "event"))
DEAD_LETTERED = counter(
    "cerebrum_events_dead_lettered_total", "Events given up on after their retries.", ("service", "event")
)
OUTBOX_AGE = gauge(
    "cerebrum_outbox_oldest_unsent_age_seconds", "Age of the oldest event not yet published.", ("service",)
)
OUTBOX_PENDING = gauge("cerebrum_outbox_pending_events", "Events waiting in the outbox.", ("service",))
RELAY_FAILURES = counter("cerebrum_outbox_relay_failures_total", "Relay batches the broker did not take.", ("service",))

tracer = trace.get_tracer("cerebrum.events")


def current_trace_headers() -> dict[str, str]:
    """The current trace context as W3C headers, to store beside an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str]) -> Context:
    return propagate.extract(dict(headers))


def inject_into(headers: dict[str, str], ctx: Context | None = None) -> dict[str, str]:
    propagate.inject(headers, context=ctx or context.get_current())
    return headers
