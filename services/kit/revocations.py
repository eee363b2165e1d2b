"""Signed-out sessions, known in memory: an authenticated request needs no Redis round trip to
learn that its session still stands.

Signing a session out (a logout, a password change, a refresh token used twice, a deleted
account) writes it under ``revoked_session_key`` for the life of an access token and publishes
its id on ``revocations_channel`` (``sign_out``). Every service on a real Redis keeps a
subscription on a connection of its own (``SignedOutSessions``): once subscribed, it reads the
sessions already signed out, then adds each one published. While it is subscribed,
``signed_out`` answers from memory; before that, and while a lost subscription is made again, it
answers None and the caller asks Redis as before (``services.kit.deps.get_identity``). A
sign-out made in this process is known here at once; another process learns it when its loop next
reads its subscription, which Redis fills in the turn it answers the sign-out: only a request that
a busy process reads in the same turn of its loop as that message can still pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from contextlib import suppress
from typing import cast

import redis.asyncio as aioredis
import structlog

from services.kit.auth import revoked_session_key
from services.kit.cache import REDIS_UNAVAILABLE, create_redis
from services.kit.settings import ServiceSettings

log = structlog.get_logger("cerebrum.auth")
_watching: dict[str, set[SignedOutSessions]] = {}
"""This process's subscriptions by channel: a sign-out made here reaches them without a round trip."""


def revocations_channel(settings: ServiceSettings) -> str:
    return settings.redis_key_prefix + "revoked-sessions"


def _index(settings: ServiceSettings) -> str:
    """The signed-out sessions by the time their tokens have all expired (a sorted set), read whole
    when a subscription is made: one command, where a scan would walk every key in Redis."""
    return settings.redis_key_prefix + "revoked-sessions:until"


async def publish_sign_out(
    redis: aioredis.Redis, settings: ServiceSettings, sessions: Iterable[str | uuid.UUID]
) -> list[str]:
    """Writes the sessions as signed out and publishes them, in one round trip; returns their ids.

    Raises what Redis raises when it is out of reach: the caller decides what that costs.
    """
    ids = [str(session) for session in sessions]
    if not ids:
        return ids
    channel, index, ttl = revocations_channel(settings), _index(settings), settings.access_token_ttl_seconds
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for session in ids:
            pipe.set(revoked_session_key(settings, session), "1", ex=ttl)
        pipe.zadd(index, {session: now + ttl for session in ids})
        pipe.zremrangebyscore(index, "-inf", now)
        pipe.expire(index, ttl)
        for session in ids:
            pipe.publish(channel, session)
        await pipe.execute()
    return ids


async def sign_out(redis: aioredis.Redis, settings: ServiceSettings, sessions: Iterable[str | uuid.UUID]) -> None:
    """Makes the sessions' live access tokens fail everywhere until they expire anyway; this
    process's subscriptions know it at once."""
    ids = await publish_sign_out(redis, settings, sessions)
    for watcher in _watching.get(revocations_channel(settings), ()):
        watcher.add(ids, settings.access_token_ttl_seconds)


class SignedOutSessions:
    """The sessions signed out while this process is subscribed, each until its tokens have expired."""

    def __init__(self, settings: ServiceSettings, *, retry_seconds: float = 0.5) -> None:
        assert settings.redis_url, "the stand-in Redis of the embedded platform is asked directly"
        # A client of its own, named for CLIENT LIST, that never makes a lost connection again by
        # itself: what was published while it was down would be missed. This class does it, and
        # then reads the signed-out sessions anew.
        name = f"{settings.redis_key_prefix}revocations:{settings.service_name}"
        self.redis = create_redis(settings, name=name, reconnect=False)
        self.settings = settings
        self.channel = revocations_channel(settings)
        self.retry_seconds = retry_seconds
        self.quiet_seconds = 5.0
        """How long the subscription may stay silent before a ping must prove it alive."""
        self._until: dict[str, float] = {}
        self._live = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._pubsub: aioredis.client.PubSub | None = None

    @property
    def live(self) -> bool:
        return self._live

    def signed_out(self, session_id: str) -> bool | None:
        """Whether the session was signed out; None when this process is not subscribed (ask Redis)."""
        return self.remembered(session_id) if self._live else None

    def remembered(self, session_id: str) -> bool:
        """Whether the session was known to be signed out when last subscribed: while Redis is out of
        reach, what was signed out before stays refused."""
        return self._until.get(session_id, 0.0) > time.monotonic()

    def add(self, sessions: Iterable[str], ttl_seconds: float) -> None:
        until = time.monotonic() + ttl_seconds
        self.add_until(dict.fromkeys(sessions, until))

    def add_until(self, sessions: dict[str, float]) -> None:
        """Adds sessions with the monotonic time their tokens have all expired by."""
        for session, until in sessions.items():
            self._until[session] = max(until, self._until.get(session, 0.0))
        if len(self._until) > 1024:
            now = time.monotonic()
            self._until = {s: t for s, t in self._until.items() if t > now}

    async def start(self) -> None:
        _watching.setdefault(self.channel, set()).add(self)
        self._task = asyncio.create_task(self._watch(), name=f"revocations-{self.settings.service_name}")

    async def stop(self) -> None:
        """Ends the subscription. A read waiting on it is ended by closing its connection: cancelled
        inside redis-py's timed read, it could wait out its whole timeout first."""
        _watching.get(self.channel, set()).discard(self)
        self._stopping, self._live = True, False
        task, self._task = self._task, None
        if task is not None:
            if self._pubsub is not None:
                with suppress(*REDIS_UNAVAILABLE):
                    await self._pubsub.aclose()
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                log.warning("revocations_not_stopped", service=self.settings.service_name)
            elif not task.cancelled():
                task.exception()  # retrieved: an ending subscription's error is not news
        await self.redis.aclose()

    async def _watch(self) -> None:
        delay = self.retry_seconds
        while not self._stopping:
            pubsub = self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self._read_signed_out()  # after subscribing: nothing falls between the two
                self._live = True
                delay = self.retry_seconds
                log.info("revocations_subscribed", service=self.settings.service_name, known=len(self._until))
                await self._follow(pubsub)
            except REDIS_UNAVAILABLE as exc:
                if self._live:
                    name = self.settings.service_name
                    log.warning("revocations_unsubscribed", service=name, error=type(exc).__name__)
            finally:
                self._live, self._pubsub = False, None
                with suppress(*REDIS_UNAVAILABLE):
                    await pubsub.aclose()
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _read_signed_out(self) -> None:
        """The sessions signed out before the subscription, with what is left of each one's life."""
        read = await self.redis.zrangebyscore(_index(self.settings), time.time(), "+inf", withscores=True)
        signed_out = cast("list[tuple[str, float]]", read)  # decoded members, with their scores
        now, wall = time.monotonic(), time.time()
        self.add_until({session: now + until - wall for session, until in signed_out})

    async def _follow(self, pubsub: aioredis.client.PubSub) -> None:
        """Adds each session published; a subscription silent past ``quiet_seconds`` must answer a ping."""
        pinged = False
        ttl = self.settings.access_token_ttl_seconds
        while not self._stopping:
            message = await pubsub.get_message(timeout=self.quiet_seconds)
            if message is None:
                if pinged:
                    raise ConnectionError("the revocations subscription did not answer a ping")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message.get("type") == "message":
                self.add([str(message["data"])], ttl)
