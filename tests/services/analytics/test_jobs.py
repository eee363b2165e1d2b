"""The background jobs start with the app and stop with it, even when a driver swallows a cancellation."""

from __future__ import annotations

import asyncio

from services.analytics.aggregator import BackgroundJobs
from tests.services.analytics.conftest import AnalyticsApi


class StubbornAggregator:
    """Turns the cancellation of its pass into an error of its own, as a database driver may."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.passes = 0

    async def run_once(self) -> int:
        self.passes += 1
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("connection was closed in the middle of operation") from None
        return 0


async def test_stopping_ends_a_pass_whose_cancellation_is_swallowed(embedded_analytics: AnalyticsApi) -> None:
    ctx = embedded_analytics.ctx
    aggregator = StubbornAggregator()
    jobs = BackgroundJobs(aggregator=aggregator, partitions=ctx.partitions, settings=ctx.settings)  # type: ignore[arg-type]
    await jobs.start()
    await aggregator.started.wait()
    await asyncio.wait_for(jobs.stop(), timeout=30)  # a guard against hanging, not a timing
    assert aggregator.passes == 1, "the loop ended instead of starting another pass"
