"""Signed-out sessions followed in memory, on the real Redis: what each service knows, and when."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.kit.revocations import SignedOutSessions, publish_sign_out, revocations_channel, sign_out
from services.kit.settings import ServiceSettings
from tests.apps import real_servers
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_prefix: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(service_name="probe", **real_servers("unused", redis_prefix, tmp_path))


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    """Another process's connection: what it writes and publishes reaches the subscription only through Redis."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def watching(settings: ServiceSettings) -> AsyncIterator[SignedOutSessions]:
    sessions = SignedOutSessions(settings, retry_seconds=0.05)
    await sessions.start()
    await _until(lambda: sessions.live, "the subscription was never made")
    yield sessions
    await sessions.stop()


async def _until(condition: object, failure: str, seconds: float = 5.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(failure)


async def _signed_out_elsewhere(redis: aioredis.Redis, settings: ServiceSettings, session: str) -> None:
    """A sign-out as the users service in another process makes it: written and published, with no
    subscription of this process told directly."""
    await publish_sign_out(redis, settings, [session])


async def test_a_session_signed_out_in_another_process_is_known_here(
    watching: SignedOutSessions, redis: aioredis.Redis, settings: ServiceSettings
) -> None:
    session, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert watching.signed_out(session) is False, "subscribed: a session nobody signed out stands"

    await _signed_out_elsewhere(redis, settings, session)

    await _until(lambda: watching.signed_out(session), "the published sign-out never arrived")
    assert watching.signed_out(other) is False


async def test_a_sign_out_made_in_this_process_is_known_at_once(
    watching: SignedOutSessions, settings: ServiceSettings
) -> None:
    session = uuid.uuid4()

    await sign_out(watching.redis, settings, [session])

    assert watching.signed_out(str(session)) is True  # no turn of the loop in between


async def test_sessions_signed_out_before_the_subscription_are_known_once_it_is_made(
    settings: ServiceSettings, redis: aioredis.Redis
) -> None:
    before = str(uuid.uuid4())
    await _signed_out_elsewhere(redis, settings, before)
    sessions = SignedOutSessions(settings)
    assert sessions.signed_out(before) is None, "not subscribed yet: the caller must ask Redis"
    await sessions.start()
    try:
        await _until(lambda: sessions.live, "the subscription was never made")
        assert sessions.signed_out(before) is True
    finally:
        await sessions.stop()
    assert sessions.signed_out(before) is None, "stopped: the caller asks Redis again"


async def test_a_lost_subscription_sends_callers_to_redis_then_catches_up_on_what_it_missed(
    redis: aioredis.Redis, settings: ServiceSettings
) -> None:
    # Half a second between losing the subscription and making it again: a sign-out published
    # then reaches no subscriber, and is known only by reading the signed-out sessions anew.
    sessions = SignedOutSessions(settings, retry_seconds=0.5)
    await sessions.start()
    try:
        await _until(lambda: sessions.live, "the subscription was never made")
        name = f"{settings.redis_key_prefix}revocations:probe"
        (client,) = [c for c in await redis.client_list() if c.get("name") == name and int(c["sub"]) > 0]
        earlier, missed = str(uuid.uuid4()), str(uuid.uuid4())
        await _signed_out_elsewhere(redis, settings, earlier)
        await _until(lambda: sessions.signed_out(earlier), "the published sign-out never arrived")

        await redis.client_kill_filter(_id=client["id"])
        await _until(lambda: sessions.signed_out(missed) is None, "the cut subscription still answered from memory")
        # Should Redis itself be out of reach now, what was signed out before is still known.
        assert sessions.remembered(earlier) and not sessions.remembered(missed)
        await _signed_out_elsewhere(redis, settings, missed)
        assert await redis.pubsub_numsub(revocations_channel(settings)) == [(revocations_channel(settings), 0)]

        await _until(lambda: sessions.live, "the subscription was not made again")
        assert sessions.signed_out(missed) is True, "a sign-out published while the subscription was down was lost"
    finally:
        await sessions.stop()
