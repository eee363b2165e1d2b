"""The analytics service's business metrics."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter, gauge, histogram
from services.kit.uow import UnitOfWork

INGESTED = counter(
    "cerebrum_analytics_events_ingested_total",
    "Learning events received, by where they came from (http: clients; broker: the other services' "
    "events) and whether they were stored, had been stored before, or were past the retention.",
    ("service", "source", "outcome"),
)
SOURCES = ("http", "broker")
OUTCOMES = ("stored", "duplicate", "expired")
BATCH_SIZE = histogram(
    "cerebrum_analytics_ingest_batch_size",
    "Events per ingest request.",
    ("service",),
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 10_000),
)
AGGREGATION_LAG = gauge(
    "cerebrum_analytics_aggregation_lag_seconds",
    "Age of the oldest stored event not yet folded into the aggregates (0 when caught up).",
    ("service",),
)


def declare_ingest_series(service: str) -> None:
    """Creates every ingest series at zero, so that a rate reads 0 (not "no data") before the first event."""
    for source in SOURCES:
        for outcome in OUTCOMES:
            INGESTED.labels(service, source, outcome)


def count_broker_event_on_commit(session: AsyncSession, service: str, outcome: str) -> None:
    """Counts an event from the broker once the consumer's transaction has committed.

    A batch that fails is handled again (event by event, then on redelivery): counting before the
    commit would count its events once per try.
    """
    UnitOfWork.of(session).after_commit(INGESTED.labels(service, "broker", outcome).inc)
