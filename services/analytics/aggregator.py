"""Background jobs: folding new raw events into the aggregates, and keeping partitions and retention.

The aggregator reads events past a watermark (their ``seq``) up to a fence below which every
ingest has committed, folds them in batches, and moves the watermark in the same transaction:
each event is folded exactly once, and ingest never waits on an aggregate row.
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from services.analytics import aggregate_repository, repository
from services.analytics.live import EventRate
from services.analytics.partitions import PartitionKeeper
from services.analytics.settings import AnalyticsSettings
from services.analytics.telemetry import AGGREGATION_LAG
from services.kit.db import Database
from services.kit.jobs import PeriodicJob
from services.kit.time import as_utc, utcnow

tracer = trace.get_tracer("cerebrum.analytics")


class Aggregator:
    """Folds stored events into user activities, performance metrics, learners and reports."""

    def __init__(self, *, db: Database, settings: AnalyticsSettings, rate: EventRate) -> None:
        self.db = db
        self.settings = settings
        self.rate = rate
        self._lock = asyncio.Lock()

    async def run_once(self) -> int:
        """Folds everything stored before the call; returns how many events the watermark moved past."""
        async with self._lock:
            async with self.db.engine.begin() as conn:
                fence = await repository.ingest_fence(conn=conn)
            folded = 0
            while True:
                async with self.db.session_scope() as db:
                    watermark = await repository.claim_watermark(db=db)
                    if watermark is None or watermark >= fence:
                        break  # caught up, or another replica holds the watermark
                    through = min(fence, watermark + self.settings.aggregator_batch_events)
                    # Work found: this batch is traced (the polls that found nothing are not).
                    with tracer.start_as_current_span(
                        "analytics.fold_events", attributes={"cerebrum.analytics.after": watermark}
                    ) as span:
                        count = await repository.count_range(db=db, after=watermark, through=through)
                        await aggregate_repository.fold_events(db=db, after=watermark, through=through, now=utcnow())
                        await repository.set_watermark(db=db, watermark=through)
                        span.set_attribute("cerebrum.analytics.events", count)
                folded += count
                await self.rate.count(count)
            await self.measure_lag()
            return folded

    async def measure_lag(self) -> float:
        """Sets the lag gauge: how long the oldest unfolded event has been waiting."""
        async with self.db.session_scope() as db:
            oldest = await repository.oldest_unfolded(db=db, watermark=await repository.read_watermark(db=db))
        lag = 0.0 if oldest is None else max((utcnow() - as_utc(oldest)).total_seconds(), 0.0)
        AGGREGATION_LAG.labels(self.settings.service_name).set(lag)
        return lag


class BackgroundJobs:
    """Runs the aggregator every few seconds and partition upkeep daily, from startup to shutdown."""

    def __init__(self, *, aggregator: Aggregator, partitions: PartitionKeeper, settings: AnalyticsSettings) -> None:
        self.aggregator = aggregator
        self.partitions = partitions
        self.settings = settings
        timeout = settings.job_stop_timeout_seconds
        self.jobs = (
            PeriodicJob(
                "analytics-aggregator",
                self._aggregate,
                interval=settings.aggregator_interval_seconds,
                stop_timeout=timeout,
            ),
            PeriodicJob(
                "analytics-maintenance",
                self._maintain,
                interval=settings.maintenance_interval_seconds,
                stop_timeout=timeout,
                run_at_start=False,  # start() has just done it
            ),
        )

    async def maintain(self) -> None:
        """Creates this window's partitions and drops those past retention."""
        now = utcnow()
        await self.partitions.prepare(now)
        await self.partitions.drop_expired(now)

    async def start(self) -> None:
        await self.maintain()
        for job in self.jobs:
            await job.start()

    async def stop(self) -> None:
        """Stops both jobs together; a pass in progress may finish within the stop timeout."""
        await asyncio.gather(*(job.stop() for job in self.jobs))

    async def _aggregate(self) -> None:
        await self.aggregator.run_once()

    async def _maintain(self) -> None:
        # A daily round that always has work to do: traced, unlike the aggregator's polls.
        with tracer.start_as_current_span("analytics.maintain_partitions"):
            await self.maintain()
