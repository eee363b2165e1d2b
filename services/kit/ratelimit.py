"""Rate limits kept in Redis (the ``limits`` library's moving window, in one round trip).

A check counts a hit against one or more limits and reads back what is left of each, in a single
Lua script: the ``limits`` library's own moving-window scripts (acquire, then window stats) run
one after the other per limit, on its data layout and keys, so replicas running either agree.
``limits`` needed two round trips per limit; the gateway checks two limits on every request.
Concurrent checks share that round trip: those that arrive while one call is on its way go
together in the next (``ratelimit_script.Coalescer``), so that a busy gateway pays for a few calls, not one per
request.

A caller Redis has just allowed may be counted without a round trip (``hit_unasked``): while
Redis's last decision for them leaves room, the hit is counted here and sent with every other such
hit a moment later (``FLUSH_SECONDS``), in one call, whose replies refresh the decisions. The
gateway decides so every request it can (services/gateway/proxy.py). A caller is never
let past what that decision left; only hits made meanwhile through another process can take them
past the limit, for one interval at most.

If Redis cannot be reached the limiter keeps serving with a per-process limit of the same size,
and says so in ``cerebrum_ratelimit_fallback_total``: a Redis outage must not lock students out,
nor open the door to unlimited guessing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from observability.metrics import at_zero, counter
from services.kit.cache import REDIS_UNAVAILABLE
from services.kit.ratelimit_script import ACQUIRE_ALL, QUIET, Coalescer
from services.kit.settings import ServiceSettings

FALLBACKS = counter(
    "cerebrum_ratelimit_fallback_total",
    "Rate-limit checks served by the per-process fallback because Redis was unreachable.",
    ("service",),
)
log = structlog.get_logger("cerebrum.ratelimit")
tracer = trace.get_tracer("cerebrum.ratelimit")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    read: tuple[str | None, ...] | None = None
    """The keys ``hit_all`` was asked to read, read in the same round trip; None when it could not."""

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_after)


FLUSH_SECONDS = 0.1
"""How long a hit counted without a round trip waits to go to Redis with the others."""
KNOWN_SECONDS = 300.0
"""How long Redis's decision for a caller may stand in for asking again. Its age does not loosen the
limit: a window only frees hits as it moves, and hits made through other processes meanwhile are
seen at the next batch's reply, at most ``FLUSH_SECONDS`` later. Only the headers it gives
(remaining, reset) grow approximate with age."""
MAX_KNOWN = 20_000
_Key = tuple[tuple[RateLimitItem, ...], tuple[str, ...]]


@dataclass
class _Known:
    """Redis's last decision for a caller, when it was made, and hits counted since that it has not seen."""

    decision: Decision
    at: float
    pending: int = field(default=0)


@lru_cache(maxsize=256)
def parse_limits(limits: str) -> tuple[RateLimitItem, ...]:
    """Every window of a limit string such as ``"10/minute;100/hour"`` (``;``, ``,`` or ``|`` between)."""
    return tuple(parse_many(limits))


def verdict(decisions: Sequence[Decision]) -> Decision:
    """The decision to act on: the limit that refused, else the one with the fewest hits left."""
    tightest = decisions[0]
    for decision in decisions:
        if not decision.allowed:
            return decision
        if decision.remaining < tightest.remaining:
            tightest = decision
    return tightest


class RateLimiter:
    """Checks and counts hits against limits such as ``"5/minute"`` or ``"5/minute;20/hour"``."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.service = settings.service_name
        at_zero(FALLBACKS, self.service)  # so that the first fallback shows as an increase
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
        self._local = MovingWindowRateLimiter(self.local)
        self._shared = MovingWindowRateLimiter(self.shared) if self.shared is not self.local else self._local
        self._script: Any = None
        if isinstance(self.shared, RedisStorage) and not isinstance(self.shared, RedisClusterStorage):
            # The limits storage's own client (its URL, timeouts and key prefix). Not on a cluster,
            # where one script may not touch keys of several slots: there, one call per limit.
            bridge: Any = self.shared.bridge
            self._bridge = bridge
            self._script = bridge.get_connection().register_script(ACQUIRE_ALL)
        self._coalescer: Coalescer | None = None
        self._known: OrderedDict[_Key, _Known] = OrderedDict()
        self._later: list[_Key] = []
        """Hits counted without a round trip, not yet sent: each caller's (limits, identifiers)."""
        self._flusher: asyncio.Task[None] | None = None
        self.flush_seconds = FLUSH_SECONDS
        self._flushing = asyncio.Lock()

    @property
    def reads_keys(self) -> bool:
        """Whether ``hit_all`` reads keys in its round trip: then a decision without them means Redis was away."""
        return self._script is not None

    async def hit(self, limit: str | RateLimitItem, *identifiers: str) -> Decision:
        """Counts one hit for the identifiers; tells whether it is within every window of the limit."""
        return await self.hit_all((limit,), *identifiers)

    async def hit_all(
        self, limits: Sequence[str | RateLimitItem], *identifiers: str, read: Sequence[str] = ()
    ) -> Decision:
        """Counts a hit against each limit in turn, up to the first that refuses it (one round trip).

        Returns the refusing limit's decision, or else the one with the fewest hits left. ``read``:
        Redis keys (whole, unprefixed) whose values an allowed decision carries, read in the same
        round trip; its ``read`` is None when they could not be (Redis away, a cluster, memory).
        """
        items = [item for limit in limits for item in (parse_limits(limit) if isinstance(limit, str) else (limit,))]
        got: tuple[str | None, ...] | None = None
        key: _Key = (tuple(items), identifiers)
        known = self._known.get(key) if self._known else None
        if known is not None and known.pending:
            await self.flush()  # Redis counts this caller's hits made without it before this one
        try:
            decisions, got = await self._decide_shared(items, identifiers, read)
        except REDIS_UNAVAILABLE as exc:
            # RuntimeError: a connection the server reset, as uvloop reports it (closed transport).
            decisions = await self._decide_local(self._local, items, identifiers)
            FALLBACKS.labels(self.service).inc(len(decisions))
            log.warning("ratelimit_fallback", reason=type(exc).__name__)
            return verdict(decisions)
        decision = verdict(decisions)
        if self._script is not None:
            self._remember(key, decision)
        return replace(decision, read=got) if got is not None and decision.allowed else decision

    def hit_unasked(self, limits: Sequence[RateLimitItem], *identifiers: str) -> Decision | None:
        """Counts a hit with no round trip, when Redis's last decision for these identifiers leaves room.

        The hit goes to Redis with the others of the next ``flush_seconds``; the reply refreshes the
        decision. None: there is no such decision, it is older than ``KNOWN_SECONDS``, or it leaves
        no room (a refusal included): ask Redis with ``hit_all``.
        """
        key = (tuple(limits), identifiers)
        known = self._known.get(key)
        if known is None:
            return None
        decision, elapsed = known.decision, time.monotonic() - known.at
        if not decision.allowed or elapsed > KNOWN_SECONDS or decision.remaining - known.pending < 1:
            return None
        known.pending += 1
        self._later.append(key)
        if self._flusher is None:
            loop = asyncio.get_running_loop()
            self._flusher = loop.create_task(self._flush_later(), context=QUIET.copy())
        remaining = decision.remaining - known.pending
        return Decision(True, decision.limit, remaining, max(0, decision.reset_after - int(elapsed)))

    def _remember(self, key: _Key, decision: Decision) -> None:
        known = self._known.get(key)
        if known is None:
            self._known[key] = _Known(decision, time.monotonic())
            if len(self._known) > MAX_KNOWN:
                self._known.popitem(last=False)
        else:
            known.decision, known.at = decision, time.monotonic()
            self._known.move_to_end(key)

    async def _flush_later(self) -> None:
        try:
            while self._later:
                await asyncio.sleep(self.flush_seconds)
                await asyncio.shield(self.flush())  # a stop cancels the wait, never a batch on its way
        finally:
            self._flusher = None

    async def flush(self) -> None:
        """Sends the hits counted without a round trip, in one call; their replies refresh the decisions.

        Redis out of reach: the hits count against the per-process fallback instead, and every
        caller is asked about again (``hit_all`` falls back in turn while Redis stays away).
        """
        async with self._flushing:  # one at a time: a flush waits for the hits of one on its way
            await self._flush()

    async def _flush(self) -> None:
        batch, self._later = self._later, []
        if not batch:
            return
        replies = await asyncio.gather(
            *(self._decide_shared(list(limits), identifiers, ()) for limits, identifiers in batch),
            return_exceptions=True,
        )
        now = time.monotonic()
        for key, reply in zip(batch, replies, strict=True):
            limits, identifiers = key
            known = self._known.get(key)
            if isinstance(reply, BaseException):  # counted in the process instead, whatever stopped it
                if not isinstance(reply, REDIS_UNAVAILABLE):
                    log.error("ratelimit_batch_failed", error=type(reply).__name__)
                await self._decide_local(self._local, list(limits), identifiers)
                FALLBACKS.labels(self.service).inc()
                self._known.pop(key, None)
                continue
            if known is not None:
                known.pending = max(0, known.pending - 1)
                known.decision, known.at = verdict(reply[0]), now

    async def aclose(self) -> None:
        """Sends what was counted without a round trip: a stopping process loses none of it."""
        flusher = self._flusher
        if flusher is not None:
            flusher.cancel()
            with suppress(asyncio.CancelledError, *REDIS_UNAVAILABLE):
                await flusher
        with suppress(*REDIS_UNAVAILABLE):
            await self.flush()  # after any batch on its way (one flush at a time)

    async def _decide_shared(
        self, items: list[RateLimitItem], identifiers: tuple[str, ...], read: Sequence[str]
    ) -> tuple[list[Decision], tuple[str | None, ...] | None]:
        if self._script is None:
            return await self._decide_local(self._shared, items, identifiers), None
        args: list[float | int] = []
        for item in items:
            args += (item.amount, item.get_expiry())
        keys = [self._bridge.prefixed_key(item.key_for(*identifiers)) for item in items]
        coalescer = self._coalescer
        if coalescer is None or coalescer.loop is not asyncio.get_running_loop():
            coalescer = self._coalescer = Coalescer(self._script)
        if trace.get_current_span().is_recording():
            with tracer.start_as_current_span(
                "ratelimit check",
                kind=SpanKind.CLIENT,
                attributes={"db.system.name": "redis", "db.operation.name": "EVALSHA", "cerebrum.limits": len(items)},
            ) as span:
                raw, together = await coalescer.check(keys, read, args)
                span.set_attribute("cerebrum.ratelimit.checks_in_call", together)
        else:
            raw, _ = await coalescer.check(keys, read, args)
        now = time.time()
        decisions = []
        for i in range(0, min(len(raw), 3 * len(items)), 3):
            item = items[i // 3]
            acquired, oldest, count = int(raw[i]), raw[i + 1], int(raw[i + 2])
            window_start = float(oldest) if count else now
            reset_after = math.ceil(window_start + item.get_expiry() - time.time())
            decisions.append(Decision(bool(acquired), item.amount, item.amount - count, max(reset_after, 0)))
        values = raw[3 * len(items) :]
        got = tuple(None if v is None else v.decode() if isinstance(v, bytes) else str(v) for v in values)
        return decisions, (got if len(got) == len(read) else None)

    @staticmethod
    async def _decide_local(
        strategy: MovingWindowRateLimiter, items: list[RateLimitItem], identifiers: tuple[str, ...]
    ) -> list[Decision]:
        decisions = []
        for item in items:
            allowed = await strategy.hit(item, *identifiers)
            stats = await strategy.get_window_stats(item, *identifiers)
            reset_after = math.ceil(stats.reset_time - time.time())
            decisions.append(Decision(allowed, item.amount, stats.remaining, max(reset_after, 0)))
            if not allowed:
                break
        return decisions

    async def reset(self) -> None:
        await self.shared.reset()
