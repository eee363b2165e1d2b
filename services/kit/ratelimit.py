"""Rate limits kept in Redis (the ``limits`` library's moving-window strategy).

If Redis cannot be reached the limiter keeps serving with a per-process limit of the same size,
and says so in ``cerebrum_ratelimit_fallback_total``: a Redis outage must not lock students out,
nor open the door to unlimited guessing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from observability.metrics import counter
from services.kit.settings import ServiceSettings

FALLBACKS = counter(
    "cerebrum_ratelimit_fallback_total",
    "Rate-limit checks served by the per-process fallback because Redis was unreachable.",
    ("service",),
)
log = structlog.get_logger("cerebrum.ratelimit")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_after)


class RateLimiter:
    """Checks and counts hits against named limits such as ``"5/minute"``."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.service = settings.service_name
        self.local: Storage = MemoryStorage()
        self.shared: Storage = (
            RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=settings.redis_key_prefix + "ratelimit",
                socket_timeout=1,
                socket_connect_timeout=1,
            )
            if settings.redis_url
            else self.local
        )
        self._shared = MovingWindowRateLimiter(self.shared)
        self._local = MovingWindowRateLimiter(self.local)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str) -> Decision:
        """Counts one hit for the identifiers; tells whether it is within the limit."""
        item = parse(limit) if isinstance(limit, str) else limit
        try:
            return await self._decide(self._shared, item, identifiers)
        except (RedisError, OSError, ConnectionError, RuntimeError) as exc:
            # RuntimeError: a connection the server reset, as uvloop reports it (closed transport).
            FALLBACKS.labels(self.service).inc()
            log.warning("ratelimit_fallback", reason=type(exc).__name__)
            return await self._decide(self._local, item, identifiers)

    @staticmethod
    async def _decide(strategy: MovingWindowRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]) -> Decision:
        allowed = await strategy.hit(item, *identifiers)
        stats = await strategy.get_window_stats(item, *identifiers)
        reset_after = math.ceil(stats.reset_time - time.time())
        return Decision(allowed, item.amount, stats.remaining, max(reset_after, 0))

    async def reset(self) -> None:
        await self.shared.reset()
