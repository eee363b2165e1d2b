"""Copies of public replies kept at the gateway, checked against a generation in Redis at each use.

A read that every caller of a role sees alike (the public catalogue, a published course) is
stamped by its service with the Redis key of the read's *generation* and its value, taken before
the data is read. The writers that drop the service's cached copy drop the generation in the same
command; the next reader makes a new one (a random token: a generation is never reused, so a
Redis restart cannot bring an old copy back). The gateway keeps the stamped reply and, on each
later request, reads the generation in the round trip that counts the rate limit: the same
generation serves the copy; another one, none, or Redis out of reach sends the request on to the
service. A change made through the service therefore shows on the very next read, as it does in
the service's own cache; the copy's lifetime bounds what a change made behind its back leaves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
import structlog

from services.kit.cache import REDIS_UNAVAILABLE

EDGE_HEADER = "x-edge-copy"
"""The stamp a service puts on a reply the gateway may keep: ``<generation key> <value> <seconds>``."""
GENERATION_TTL_SECONDS = 86_400
"""How long an untouched generation lives; a read after that makes a new one (one extra miss)."""
log = structlog.get_logger("cerebrum.edge")


class Headers(Protocol):
    """A reply's headers being built (a Starlette ``Response.headers``, or a dict)."""

    def __setitem__(self, key: str, value: str, /) -> None: ...


def generation_key(cache_key: str) -> str:
    """The key holding the generation of what is cached under ``cache_key``."""
    return cache_key + ":generation"


@dataclass(frozen=True)
class Stamp:
    generation_key: str
    generation: str
    ttl_seconds: int

    def header(self) -> str:
        return f"{self.generation_key} {self.generation} {self.ttl_seconds}"

    @classmethod
    def parse(cls, value: str) -> Stamp | None:
        """The stamp in a reply's header, or None for one that is not ours (the copy is then not kept)."""
        parts = value.split(" ")
        if len(parts) != 3 or not parts[2].isdigit() or not parts[0] or not parts[1]:
            return None
        return cls(parts[0], parts[1], int(parts[2]))


async def stamp(redis: aioredis.Redis, headers: Headers, cache_key: str, ttl_seconds: int) -> None:
    """Lets the gateway keep this reply for ``ttl_seconds`` while the generation of ``cache_key`` holds.

    Called before the data is read: a change that commits after this read drops the generation,
    so a copy read at the old one is never served again. Without Redis the reply is not stamped.
    """
    key, made = generation_key(cache_key), uuid.uuid4().hex
    try:
        # SET NX GET answers the generation there was, or nothing when it set this one: one round trip.
        there = await redis.set(key, made, nx=True, get=True, ex=GENERATION_TTL_SECONDS)
    except REDIS_UNAVAILABLE as exc:
        log.warning("edge_stamp_unavailable", error=type(exc).__name__)
        return
    headers[EDGE_HEADER] = Stamp(key, made if there is None else str(there), ttl_seconds).header()
