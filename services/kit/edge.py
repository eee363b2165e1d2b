"""Copies of replies kept at the gateway, checked against a generation in Redis at each use.

A read that its callers see alike (the public catalogue, a published course: every caller of a
role; a student's own profile: that student) is stamped by its service with the Redis key of the
read's *generation* and its value, taken before the data is read. Generations live under one
prefix (``<prefix>edge:``), so that a gateway can ask Redis to report each change to them
(services/gateway/tracking.py). The writers that change the data drop the generation (``drop``),
with the service's cached copy where it has one; the next reader makes a new one (a random token:
a generation is never reused, so a Redis restart cannot bring an old copy back). The gateway keeps
the stamped reply and, on each later request, reads the generation in the round trip that counts
the rate limit or, while Redis reports every change to the generations, knows it from the last
such read: the same generation serves the copy; another one, none, or Redis out of reach sends the
request on to the service. A change made through the service therefore shows on the very next
read, or within the seconds its writer allows when it lets a busy copy show it late
(``drop_soon``); the copy's lifetime bounds what a change made behind its back leaves.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.cache import REDIS_UNAVAILABLE
from services.kit.uow import UnitOfWork

EDGE_HEADER = "x-edge-copy"
"""The stamp a service puts on a reply the gateway may keep: ``<generation key> <value> <seconds> <scope>``."""
GENERATION_TTL_SECONDS = 86_400
"""How long an untouched generation lives; a read after that makes a new one (one extra miss)."""
Scope = Literal["role", "user"]
"""Whom a copy answers: every caller of the role it was read for, or only the user it was read for."""
log = structlog.get_logger("cerebrum.edge")
_pending: set[asyncio.Task[None]] = set()


class Headers(Protocol):
    """A reply's headers being built (a Starlette ``Response.headers``, or a dict)."""

    def __setitem__(self, key: str, value: str, /) -> None: ...


GENERATIONS = "edge:"


def generations(prefix: str) -> str:
    """The prefix of every generation key of a platform whose keys start with ``prefix``."""
    return prefix + GENERATIONS


def generation_key(cache_key: str, prefix: str) -> str:
    """The key holding the generation of what is cached under ``cache_key`` (a key starting with ``prefix``)."""
    return generations(prefix) + cache_key.removeprefix(prefix)


@dataclass(frozen=True)
class Stamp:
    generation_key: str
    generation: str
    ttl_seconds: int
    scope: Scope = "role"

    def header(self) -> str:
        return f"{self.generation_key} {self.generation} {self.ttl_seconds} {self.scope}"

    @classmethod
    def parse(cls, value: str) -> Stamp | None:
        """The stamp in a reply's header, or None for one that is not ours (the copy is then not kept)."""
        parts = value.split(" ")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[0] or not parts[1]:
            return None
        if parts[3] == "role":
            return cls(parts[0], parts[1], int(parts[2]), "role")
        if parts[3] == "user":
            return cls(parts[0], parts[1], int(parts[2]), "user")
        return None


async def stamp(
    redis: aioredis.Redis,
    headers: Headers,
    cache_key: str,
    ttl_seconds: int,
    *,
    prefix: str,
    scope: Scope = "role",
) -> None:
    """Lets the gateway keep this reply for ``ttl_seconds`` while the generation of ``cache_key`` holds.

    Called before the data is read: a change that commits after this read drops the generation,
    so a copy read at the old one is never served again. Without Redis the reply is not stamped.
    """
    key, made = generation_key(cache_key, prefix), uuid.uuid4().hex
    try:
        # SET NX GET answers the generation there was, or nothing when it set this one: one round trip.
        there = await redis.set(key, made, nx=True, get=True, ex=GENERATION_TTL_SECONDS)
    except REDIS_UNAVAILABLE as exc:
        log.warning("edge_stamp_unavailable", error=type(exc).__name__)
        return
    headers[EDGE_HEADER] = Stamp(key, made if there is None else str(there), ttl_seconds, scope).header()


async def drop(redis: aioredis.Redis, db: AsyncSession, *cache_keys: str, prefix: str) -> None:
    """Deletes what is cached under the keys, and their generations, now and once the transaction commits.

    Again after the commit: a reader racing it may have cached, or stamped, the old version.
    """
    keys = (*cache_keys, *(generation_key(key, prefix) for key in cache_keys))
    await _delete(redis, keys)
    loop = asyncio.get_running_loop()
    UnitOfWork.of(db).after_commit(lambda: _delete_in_background(loop, redis, keys))


_soon: dict[tuple[str, ...], tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]] = {}


def drop_soon(redis: aioredis.Redis, db: AsyncSession, *cache_keys: str, within: float, prefix: str) -> None:
    """Deletes what is cached under the keys, and their generations, ``within`` seconds of the commit.

    For a change that a busy copy may show a little late: every change in those seconds is covered
    by the one delete, so that the copy is read afresh once per ``within`` seconds at most instead of
    after each change. The delete runs when every change it covers has committed, so the next reader
    reads them all. Should this process stop first, the copy's own lifetime bounds what it shows.
    """
    keys = (*cache_keys, *(generation_key(key, prefix) for key in cache_keys))
    loop = asyncio.get_running_loop()

    def delete() -> None:
        if _soon.get(keys, (None,))[0] is loop:
            del _soon[keys]
        _delete_in_background(loop, redis, keys)

    def schedule() -> None:
        due = _soon.get(keys)
        if due is None or due[0] is not loop or due[1].cancelled():
            _soon[keys] = (loop, loop.call_later(within, delete))
        # else a delete already due covers this change too: it runs after this commit

    UnitOfWork.of(db).after_commit(schedule)


def _delete_in_background(loop: asyncio.AbstractEventLoop, redis: aioredis.Redis, keys: tuple[str, ...]) -> None:
    task = loop.create_task(_delete(redis, keys))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _delete(redis: aioredis.Redis, keys: tuple[str, ...]) -> None:
    try:
        await redis.delete(*keys)
    except REDIS_UNAVAILABLE as exc:
        log.warning("cache_unavailable", operation="delete", keys=len(keys), error=type(exc).__name__)
