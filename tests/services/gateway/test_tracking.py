"""The gateway's memory of what it read in Redis, on the real Redis: kept until Redis reports a change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.gateway.tracking import TrackedKeys
from services.kit.settings import ServiceSettings
from tests.apps import REDIS_URL, real_servers

pytestmark = pytest.mark.integration


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@pytest.fixture
async def tracked(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[TrackedKeys]:
    settings = ServiceSettings(**real_servers(pg_schema, redis_prefix, tmp_path))
    keys = TrackedKeys(settings, (f"{redis_prefix}edge:",))
    await keys.start()
    try:
        await _until(lambda: keys.live, "following Redis's changes")
        yield keys
    finally:
        await keys.stop()


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_value_read_while_followed_is_known_until_redis_reports_a_change(
    tracked: TrackedKeys, redis: aioredis.Redis, redis_prefix: str
) -> None:
    key, absent = f"{redis_prefix}edge:courses:catalogue", f"{redis_prefix}edge:users:profile:1"
    await redis.set(key, "g1")
    mark = tracked.mark()
    tracked.learn(mark, [key, absent], ["g1", None])
    assert tracked.known([key, absent]) == ("g1", None), "a key known to be absent is known too"
    assert tracked.known([key, f"{redis_prefix}edge:never-read"]) is None, "a key never read must be read"

    await redis.set(key, "g2")  # by anyone: another gateway's service, an operator
    await _until(lambda: tracked.known([key]) is None, "the change was reported")
    assert tracked.known([absent]) == (None,), "the other keys stay known"
    await redis.set(absent, "revoked")
    await _until(lambda: tracked.known([absent]) is None, "a key made was reported")


async def test_a_value_read_across_a_reported_change_is_not_kept(
    tracked: TrackedKeys, redis: aioredis.Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}edge:courses:course:1"
    before = tracked.changes
    await redis.set(key, "g1")
    await _until(lambda: tracked.changes != before, "the key's making was reported")
    mark = tracked.mark()  # a read is sent...
    await redis.delete(key)  # ...a change is made while it is on its way, and reported
    await _until(lambda: tracked.changes != mark, "the change was reported")
    tracked.learn(mark, [key], ["g1"])  # ...and the read's reply, which may predate it, comes back
    assert tracked.known([key]) is None


async def test_after_a_barrier_nothing_is_known_until_redis_has_answered_it(
    tracked: TrackedKeys, redis_prefix: str
) -> None:
    key = f"{redis_prefix}edge:courses:catalogue"
    tracked.learn(tracked.mark(), [key], ["g1"])
    tracked.barrier()  # a write went through: its changes were reported before its answer
    assert tracked.known([key]) is None, "not until every report sent before the barrier has been read"
    await _until(lambda: tracked.known([key]) == ("g1",), "the barrier's answer came back")


async def test_changes_outside_the_followed_prefixes_are_not_reported(
    tracked: TrackedKeys, redis: aioredis.Redis, redis_prefix: str
) -> None:
    before = tracked.changes
    await redis.set(f"{redis_prefix}ratelimit:gateway:u", "1")  # every request writes such keys
    await redis.set(f"{redis_prefix}edge:courses:catalogue", "g1")
    await _until(lambda: tracked.changes > before, "the followed change was reported")
    assert tracked.changes == before + 1, "one report: the key under the prefix"
