"""Rate limits on the real Redis: several limits in one round trip, on the limits library's own data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import REGISTRY
from redis.asyncio.connection import AbstractConnection

from services.kit.ratelimit import RateLimiter
from services.kit.settings import ServiceSettings
from tests.apps import real_servers
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts commands (or pipelines and scripts) sent to Redis."""
    sent = [0]
    original = AbstractConnection.send_packed_command

    async def counted(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    yield sent


def _limiter(pg_schema: str, redis_prefix: str, tmp_path: Path, **overrides: Any) -> RateLimiter:
    settings = ServiceSettings(**{**real_servers(pg_schema, redis_prefix, tmp_path), **overrides})
    return RateLimiter(settings)


async def test_two_limits_cost_one_round_trip_and_the_tightest_is_reported(
    pg_schema: str, redis_prefix: str, tmp_path: Path, round_trips: list[int]
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    limits = ("3/minute", "10/hour")
    await limiter.hit_all(limits, "gateway", "warm-up")  # loads the script
    before = round_trips[0]
    decisions = [await limiter.hit_all(limits, "gateway", "203.0.113.7") for _ in range(4)]
    assert round_trips[0] - before == 4
    assert [(d.allowed, d.limit, d.remaining) for d in decisions] == [
        (True, 3, 2),
        (True, 3, 1),
        (True, 3, 0),
        (False, 3, 0),
    ]
    assert all(0 < d.reset_after <= 60 for d in decisions) and decisions[-1].retry_after >= 1
    # The limits library reads the same windows: three hits in each (the refused one counted nowhere).
    strategy = MovingWindowRateLimiter(limiter.shared)
    minute = await strategy.get_window_stats(parse("3/minute"), "gateway", "203.0.113.7")
    hour = await strategy.get_window_stats(parse("10/hour"), "gateway", "203.0.113.7")
    assert (minute.remaining, hour.remaining) == (0, 7)


async def test_a_refusal_by_a_later_limit_keeps_the_earlier_hits_as_one_by_one_checks_did(
    pg_schema: str, redis_prefix: str, tmp_path: Path
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    limits = ("5/minute", "2/hour")
    assert [(await limiter.hit_all(limits, "login", "a")).allowed for _ in range(3)] == [True, True, False]
    refused = await limiter.hit_all(limits, "login", "a")
    assert (refused.allowed, refused.limit, refused.remaining) == (False, 2, 0)
    minute = await MovingWindowRateLimiter(limiter.shared).get_window_stats(parse("5/minute"), "login", "a")
    assert minute.remaining == 1, "each check hit the minute limit before the hour limit refused it"


async def test_hits_counted_by_the_limits_library_are_seen_and_single_hits_still_work(
    pg_schema: str, redis_prefix: str, tmp_path: Path
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    strategy = MovingWindowRateLimiter(limiter.shared)
    for _ in range(2):
        assert await strategy.hit(parse("3/minute"), "register", "b")
    decision = await limiter.hit("3/minute", "register", "b")
    assert (decision.allowed, decision.remaining) == (True, 0)
    assert not (await limiter.hit("3/minute", "register", "b")).allowed
    assert not await strategy.test(parse("3/minute"), "register", "b")


async def test_without_redis_every_check_is_served_locally_and_counted(
    pg_schema: str, redis_prefix: str, tmp_path: Path
) -> None:
    labels = {"service": "cerebrum"}
    before = REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", labels) or 0
    limiter = _limiter(pg_schema, redis_prefix, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    decisions = [await limiter.hit_all(("2/minute", "5/hour"), "gateway", "c") for _ in range(3)]
    assert [(d.allowed, d.limit, d.remaining) for d in decisions] == [(True, 2, 1), (True, 2, 0), (False, 2, 0)]
    after = REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", labels)
    assert after == before + 2 + 2 + 1, "one per limit checked, as when each limit was its own check"


async def test_keys_to_read_come_back_in_the_same_round_trip_when_the_hit_is_allowed(
    pg_schema: str, redis_prefix: str, tmp_path: Path, round_trips: list[int]
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    present, absent = f"{redis_prefix}generation", f"{redis_prefix}nothing"
    await limiter.shared.bridge.get_connection().set(present, "7f3a")  # type: ignore[attr-defined]
    await limiter.hit_all(("2/minute",), "gateway", "warm-up")  # loads the script
    before = round_trips[0]
    allowed = await limiter.hit_all(("2/minute", "10/hour"), "gateway", "d", read=(present, absent))
    assert round_trips[0] - before == 1
    assert (allowed.allowed, allowed.remaining, allowed.read) == (True, 1, ("7f3a", None))
    await limiter.hit_all(("2/minute",), "gateway", "d")
    refused = await limiter.hit_all(("2/minute", "10/hour"), "gateway", "d", read=(present,))
    assert not refused.allowed and refused.read is None, "a refused hit reads nothing"
    plain = await limiter.hit_all(("5/minute",), "gateway", "e")
    assert plain.read == (), "no keys asked, none read"


async def test_without_redis_nothing_is_read(pg_schema: str, redis_prefix: str, tmp_path: Path) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    decision = await limiter.hit_all(("2/minute",), "gateway", "f", read=(f"{redis_prefix}generation",))
    assert decision.allowed and decision.read is None


async def test_concurrent_checks_share_round_trips_and_each_gets_its_own_answer(
    pg_schema: str, redis_prefix: str, tmp_path: Path, round_trips: list[int]
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    connection = limiter.shared.bridge.get_connection()  # type: ignore[attr-defined]
    await connection.set(f"{redis_prefix}gen:a", "a1")
    await connection.set(f"{redis_prefix}gen:b", "b1")
    await limiter.hit_all(("2/minute",), "gateway", "warm-up")  # loads the script
    before = round_trips[0]
    crowd = [limiter.hit_all(("5/minute", "100/hour"), "gateway", "crowd") for _ in range(12)]
    readers = [
        limiter.hit_all(("5/minute",), "gateway", "reader-a", read=(f"{redis_prefix}gen:a",)),
        limiter.hit_all(("5/minute",), "gateway", "reader-b", read=(f"{redis_prefix}gen:b", f"{redis_prefix}none")),
    ]
    decisions = await asyncio.gather(*crowd, *readers)
    assert round_trips[0] - before <= 2, "the first check goes at once, the others together in the next call"
    allowed = [d for d in decisions[:12] if d.allowed]
    assert len(allowed) == 5 and sorted(d.remaining for d in allowed) == [0, 1, 2, 3, 4]
    assert all((d.limit, d.remaining) == (5, 0) for d in decisions[:12] if not d.allowed)
    assert (decisions[12].read, decisions[13].read) == (("a1",), ("b1", None))
    hour = await MovingWindowRateLimiter(limiter.shared).get_window_stats(parse("100/hour"), "gateway", "crowd")
    assert hour.remaining == 95, "a refused check stops at the limit that refused it, as alone"


async def test_concurrent_checks_without_redis_each_fall_back_and_none_waits_forever(
    pg_schema: str, redis_prefix: str, tmp_path: Path
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    checks = [limiter.hit_all(("2/minute",), "gateway", "g", read=(f"{redis_prefix}generation",)) for _ in range(5)]
    decisions = await asyncio.wait_for(asyncio.gather(*checks), timeout=10)
    assert sorted(d.allowed for d in decisions) == [False, False, False, True, True]
    assert all(d.read is None for d in decisions), "nothing read without Redis"


async def test_a_caller_redis_has_allowed_is_counted_without_asking_until_the_decision_is_used_up(
    pg_schema: str, redis_prefix: str, tmp_path: Path, round_trips: list[int]
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    limiter.flush_seconds = 60.0  # sent only when asked to, below
    limits = (parse("4/minute"),)
    assert limiter.hit_unasked(limits, "gateway", "u") is None, "no decision from Redis yet: ask"
    assert (await limiter.hit_all(limits, "gateway", "u")).remaining == 3
    sent = round_trips[0]
    unasked = [limiter.hit_unasked(limits, "gateway", "u") for _ in range(4)]
    assert [d.remaining if d else None for d in unasked] == [2, 1, 0, None], "never past what Redis left"
    assert round_trips[0] == sent, "counted here, not asked"
    assert limiter.hit_unasked(limits, "gateway", "other") is None, "each caller has a decision of their own"

    # The next round trip for the caller is decided after Redis has counted the hits made meanwhile.
    refused = await limiter.hit_all(limits, "gateway", "u")
    assert not refused.allowed and refused.remaining == 0
    window = await MovingWindowRateLimiter(limiter.shared).get_window_stats(limits[0], "gateway", "u")
    assert window.remaining == 0, "four hits in Redis: the first, the three counted here"
    assert limiter.hit_unasked(limits, "gateway", "u") is None, "refused: asked again"


async def test_hits_counted_without_asking_go_to_redis_in_one_call_and_none_is_lost_at_stop(
    pg_schema: str, redis_prefix: str, tmp_path: Path, round_trips: list[int]
) -> None:
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    limiter.flush_seconds = 0.05
    limits = (parse("100/minute"),)
    for caller in ("a", "b", "c"):
        await limiter.hit_all(limits, "gateway", caller)
    sent = round_trips[0]
    for caller in ("a", "b", "c", "a"):
        assert limiter.hit_unasked(limits, "gateway", caller) is not None
    await asyncio.sleep(0.3)
    assert round_trips[0] - sent <= 2, "the interval's hits share a call or two, not one each"
    stats = MovingWindowRateLimiter(limiter.shared)
    assert [(await stats.get_window_stats(limits[0], "gateway", c)).remaining for c in "abc"] == [97, 98, 98]
    assert limiter.hit_unasked(limits, "gateway", "a").remaining == 96  # type: ignore[union-attr]
    limiter.flush_seconds = 60.0
    limiter.hit_unasked(limits, "gateway", "b")
    await limiter.aclose()  # a stopping gateway sends what it counted
    assert [(await stats.get_window_stats(limits[0], "gateway", c)).remaining for c in "ab"] == [96, 97]


async def test_hits_counted_without_asking_when_redis_goes_away_count_in_the_process(
    pg_schema: str, redis_prefix: str, tmp_path: Path
) -> None:
    labels = {"service": "cerebrum"}
    limiter = _limiter(pg_schema, redis_prefix, tmp_path)
    limiter.flush_seconds = 60.0
    limits = (parse("2/minute"),)
    await limiter.hit_all(limits, "gateway", "u")
    assert limiter.hit_unasked(limits, "gateway", "u") is not None
    # Redis goes out of reach: the client's connections now lead to a port nobody listens on.
    client = limiter._bridge.get_connection()
    client.connection_pool.connection_kwargs["port"] = free_port()
    await client.connection_pool.disconnect()
    client.connection_pool.reset()
    before = REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", labels) or 0
    await limiter.flush()
    assert REGISTRY.get_sample_value("cerebrum_ratelimit_fallback_total", labels) == before + 1
    assert limiter.hit_unasked(limits, "gateway", "u") is None, "no decision is relied on while Redis is away"
    decisions = [await limiter.hit_all(limits, "gateway", "u") for _ in range(2)]
    assert [d.allowed for d in decisions] == [True, False], "the hit counted in the process holds against the limit"
