"""Background jobs: folding new raw events into the aggregates, and keeping partitions and retention.

The aggregator reads events past a watermark (their ``seq``) up to a fence below which every
ingest has committed, folds them in batches, and moves the watermark in the same transaction:
each event is folded exactly once, and ingest never waits on an aggregate row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from services.analytics import aggregate_repository, repository
from services.analytics.live import EventRate
from services.analytics.partitions import PartitionKeeper
from services.analytics.settings import AnalyticsSettings
from services.analytics.telemetry import AGGREGATION_LAG
from services.kit.db import Database
from services.kit.time import as_utc, utcnow

log = structlog.get_logger("cerebrum.analytics.aggregator")


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
                    count = await repository.count_range(db=db, after=watermark, through=through)
                    await aggregate_repository.fold_events(db=db, after=watermark, through=through, now=utcnow())
                    await repository.set_watermark(db=db, watermark=through)
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
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def maintain(self) -> None:
        """Creates this window's partitions and drops those past retention."""
        now = utcnow()
        await self.partitions.prepare(now)
        await self.partitions.drop_expired(now)

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        await self.maintain()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.aggregator_interval_seconds, self.aggregator.run_once)),
            asyncio.create_task(
                self._every(self.settings.maintenance_interval_seconds, self.maintain, first_after=True)
            ),
        ]

    async def stop(self) -> None:
        """Stops the jobs: a pass in progress is cancelled and its transaction rolled back."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=10)
            if pending:
                log.warning("analytics_jobs_not_stopped", jobs=len(pending))
        self._tasks = []

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]], *, first_after: bool = False) -> None:
        # Stopping is a flag as well as a cancellation: a driver may turn the CancelledError of a
        # query it was running into an error of its own, which must not keep the loop alive.
        if first_after and await self._stopped_within(seconds):
            return
        while not self._stopping.is_set():
            try:
                await job()
            except Exception as exc:  # a failed pass is retried on the next tick
                if self._stopping.is_set():
                    return
                log.warning("analytics_job_failed", job=getattr(job, "__name__", "job"), error=f"{exc!r}"[:300])
            if await self._stopped_within(seconds):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
