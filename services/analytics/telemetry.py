"""The analytics service's business metrics."""

from __future__ import annotations

from observability.metrics import counter, gauge, histogram

INGESTED = counter(
    "cerebrum_analytics_events_ingested_total",
    "Learning events received, by whether they were stored or had been stored before.",
    ("service", "outcome"),
)
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
