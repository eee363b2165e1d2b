"""Metrics and trace context for events: published, consumed, retried, dead-lettered, outbox age."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from observability.metrics import at_zero, counter, gauge

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

# What a consumer counts each received event as. "ignored": it arrived (a binding left from an
# older release, a wildcard) but the service has no handler for it.
OUTCOMES = ("handled", "duplicate", "ignored", "failed")
UNKNOWN_EVENT = "unknown"

tracer = trace.get_tracer("cerebrum.events")


def bounded_event(event_type: str, known: Collection[str]) -> str:
    """The ``event`` label of an event: its name when known, else ``unknown``.

    The type comes from the message body, which anyone who can publish writes; copied as it is,
    one bad publisher would make a new series per message.
    """
    return event_type if event_type in known else UNKNOWN_EVENT


def zero_consumer_series(service: str, handled: Iterable[str]) -> None:
    """Creates a consumer's counters at zero, so that ``increase()`` sees its first event of each kind."""
    for event in handled:
        for outcome in ("handled", "duplicate", "failed"):
            CONSUMED.labels(service, event, outcome)
        RETRIED.labels(service, event)
        DEAD_LETTERED.labels(service, event)
    # A message that is no event envelope at all is dead-lettered as "unknown".
    CONSUMED.labels(service, UNKNOWN_EVENT, "ignored")
    DEAD_LETTERED.labels(service, UNKNOWN_EVENT)


def zero_relay_series(service: str, publishes: Iterable[str]) -> None:
    """Creates a relay's counters at zero: its first failure and each event's first publish then count."""
    at_zero(RELAY_FAILURES, service)
    at_zero(PUBLISHED, *((service, event) for event in publishes))


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


def start_publish_span(
    *, service: str, event_type: str, message_id: str, recorded_in: Mapping[str, str], batch_size: int
) -> Span:
    """Starts an event's publish span, a child of the request that recorded the event."""
    attributes: dict[str, str | int] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "cerebrum_events",
        "messaging.rabbitmq.destination.routing_key": event_type,
        "messaging.message.id": message_id,
        "cerebrum.service": service,
    }
    if batch_size > 1:
        # The broker took this event in one transaction with others: the timing is the batch's.
        attributes["messaging.batch.message_count"] = batch_size
    return tracer.start_span(
        f"{event_type} publish", context=context_from(recorded_in), kind=SpanKind.PRODUCER, attributes=attributes
    )


def end_publish_spans(spans: Iterable[Span], error: BaseException | None = None) -> None:
    """Ends publish spans once the broker has answered: ERROR with the exception when it did not take them."""
    if error is None:
        for span in spans:
            span.end()
        return
    cause = error.__cause__ or error
    for span in spans:
        if span.is_recording():
            span.set_attribute("error.type", type(cause).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
        span.end()
