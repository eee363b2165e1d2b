"""The analytics service's business metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter, gauge, histogram

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
_BROKER_COUNTS = "analytics_broker_ingest"


def declare_ingest_series(service: str) -> None:
    """Creates every ingest series at zero, so that a rate reads 0 (not "no data") before the first event."""
    for source in SOURCES:
        for outcome in OUTCOMES:
            INGESTED.labels(service, source, outcome)


def count_broker_event_on_commit(session: AsyncSession, outcome: str) -> None:
    """Counts an event from the broker once the consumer's transaction has committed.

    A batch that fails is handled again (event by event, then on redelivery): counting before the
    commit would count its events once per try.
    """
    session.info.setdefault(_BROKER_COUNTS, []).append(outcome)


def broker_counts_flusher(service: str) -> Callable[[dict[str, Any]], None]:
    """The database's commit hook that counts what a committed consumer transaction stored."""

    def flush(info: dict[str, Any]) -> None:
        for outcome in info.pop(_BROKER_COUNTS, ()):
            INGESTED.labels(service, "broker", outcome).inc()

    return flush
