"""A read-through Redis cache for course pages, curricula and catalogue pages that never fails a read.

Redis being down turns every read into a database read (counted as a miss, logged); it never
turns into an error. Writers delete the keys twice: at once, and again after their transaction
commits, so that a reader racing the commit cannot leave the old version cached for a whole TTL.
A family of copies (the catalogue's pages, one per query) lives as the fields of one hash, so
that a writer drops them all with one key; its TTL runs from the first copy. A reply built from a
copy may be kept at the gateway too (``stamp``, kit.edge): dropping the copy drops its
generation in the same command, and the gateway's copy with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter
from services.kit import edge
from services.kit.cache import REDIS_UNAVAILABLE, key
from services.kit.settings import ServiceSettings

CACHE_REQUESTS = counter(
    "cerebrum_cache_requests_total",
    "Read-through cache lookups by result (hit or miss; Redis unreachable counts as a miss).",
    ("service", "cache", "result"),
)
log = structlog.get_logger("cerebrum.courses.cache")
Model = TypeVar("Model", bound=BaseModel)


class ReadThroughCache:
    """JSON copies of read models in Redis under ``key(settings, name, id)``."""

    def __init__(self, *, redis: aioredis.Redis, settings: ServiceSettings, ttl_seconds: int) -> None:
        self.redis = redis
        self.settings = settings
        self.ttl = ttl_seconds

    def key(self, name: str, ident: object) -> str:
        return key(self.settings, name, ident)

    async def get_or_load(
        self,
        name: str,
        ident: object,
        model: type[Model],
        load: Callable[[], Awaitable[Model | None]],
        *,
        field: str | None = None,
        ttl_seconds: int | None = None,
    ) -> Model | None:
        """Returns the cached copy, or loads it from the database and caches it.

        ``field``: the copy is that field of the hash at ``key(name, ident)``.
        """
        cache_key = self.key(name, ident)
        raw: bytes | str | None = None
        try:
            raw = await (self.redis.get(cache_key) if field is None else self.redis.hget(cache_key, field))
        except REDIS_UNAVAILABLE as exc:
            log.warning("cache_unavailable", cache=name, operation="get", error=type(exc).__name__)
        if raw is not None:
            try:
                value = model.model_validate_json(raw)
            except ValidationError:
                log.warning("cache_entry_unreadable", cache=name)
            else:
                self._count(name, "hit")
                return value
        self._count(name, "miss")
        loaded = await load()
        if loaded is not None:
            try:
                await self._keep(cache_key, field, loaded.model_dump_json(), ttl_seconds or self.ttl)
            except REDIS_UNAVAILABLE as exc:
                log.warning("cache_unavailable", cache=name, operation="set", error=type(exc).__name__)
        return loaded

    async def _keep(self, cache_key: str, field: str | None, value: str, ttl: int) -> None:
        if field is None:
            await self.redis.set(cache_key, value, ex=ttl)
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(cache_key, field, value)
            pipe.expire(cache_key, ttl, nx=True)  # from the first copy: a busy family still expires
            await pipe.execute()

    async def stamp(self, headers: edge.Headers, name: str, ident: object, *, ttl_seconds: int) -> None:
        """Lets the gateway keep the reply built from this copy until the copy is dropped, or ``ttl_seconds``.

        Called before the copy is read, so that a change committed after it is never hidden.
        """
        prefix = self.settings.redis_key_prefix
        await edge.stamp(self.redis, headers, self.key(name, ident), ttl_seconds, prefix=prefix)

    async def invalidate(self, db: AsyncSession, *keys: str) -> None:
        """Deletes cached copies (and the gateway's, through their generations) now and after commit."""
        await edge.drop(self.redis, db, *keys, prefix=self.settings.redis_key_prefix)

    def invalidate_soon(self, db: AsyncSession, *keys: str, within: float) -> None:
        """Deletes cached copies (and the gateway's) ``within`` seconds of the commit, once for every
        change made in those seconds (kit.edge.drop_soon)."""
        edge.drop_soon(self.redis, db, *keys, within=within, prefix=self.settings.redis_key_prefix)

    def _count(self, name: str, result: str) -> None:
        CACHE_REQUESTS.labels(self.settings.service_name, name, result).inc()
