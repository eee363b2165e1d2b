"""Events per minute for the live view, counted in Redis as the aggregator folds them."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
import structlog

from services.analytics.settings import AnalyticsSettings
from services.kit.cache import REDIS_UNAVAILABLE, key

log = structlog.get_logger("cerebrum.analytics.live")


class EventRate:
    """A counter per minute, shared by every replica; read as a sliding one-minute window."""

    def __init__(self, redis: aioredis.Redis, settings: AnalyticsSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _key(self, minute: int) -> str:
        return key(self.settings, "live", "events", minute)

    async def count(self, events: int, now: float | None = None) -> None:
        """Adds events to this minute; a Redis outage only dims the live view."""
        if events <= 0:
            return
        minute = int((now if now is not None else time.time()) // 60)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(self._key(minute), events)
                pipe.expire(self._key(minute), 3600)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            log.warning("analytics_live_count_failed", error=type(exc).__name__)

    async def per_minute(self, now: float | None = None) -> int:
        """Events over the last sixty seconds, estimated from this minute and the one before."""
        now = now if now is not None else time.time()
        minute = int(now // 60)
        try:
            current, previous = await self.redis.mget([self._key(minute), self._key(minute - 1)])
        except REDIS_UNAVAILABLE as exc:
            log.warning("analytics_live_read_failed", error=type(exc).__name__)
            return 0
        elapsed = (now % 60) / 60
        return round(int(current or 0) + int(previous or 0) * (1 - elapsed))
