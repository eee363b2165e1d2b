"""Redis access: the real server from REDIS_URL, or one in-process stand-in shared by the process."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.kit.errors import register_dependency_error
from services.kit.settings import ServiceSettings

register_dependency_error(RedisConnectionError, "redis")
register_dependency_error(RedisTimeoutError, "redis")

# Embedded mode runs every service in one process; they share one stand-in "server" as they
# would share one Redis in production. One per data folder: a platform's cache must never show
# another platform's data (two embedded platforms in one process, as tests run them).
_embedded_servers: dict[str, fakeredis.FakeServer] = {}


def embedded_server(data_dir: str = "data") -> fakeredis.FakeServer:
    key = str(Path(data_dir).resolve())
    server = _embedded_servers.get(key)
    if server is None:
        server = _embedded_servers[key] = fakeredis.FakeServer()
    return server


# What a call raises while Redis is away: redis-py's own errors, socket errors, and (under uvloop)
# a RuntimeError on a transport that a reset closed, once the client's single retry has failed too.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, RuntimeError)


def create_redis(settings: ServiceSettings, *, name: str | None = None, reconnect: bool = True) -> aioredis.Redis:
    """Returns an asyncio Redis client for the service (decoded strings, short timeouts).

    ``name``: the client's name in CLIENT LIST. ``reconnect=False``: a call on a connection that
    was lost fails instead of being sent again on a new one (a subscription must know it missed
    what was published meanwhile).
    """
    if settings.redis_url:
        return aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            client_name=name,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
            # A pooled connection the server (or a proxy) reset surfaces, under uvloop, as a
            # RuntimeError on a closed transport: retry once on a fresh connection.
            retry=Retry(NoBackoff(), 1 if reconnect else 0),
            retry_on_error=[RuntimeError, RedisConnectionError],
        )
    return fakeredis.FakeAsyncRedis(server=embedded_server(str(settings.data_dir)), decode_responses=True)


def key(settings: ServiceSettings, *parts: object) -> str:
    """Builds a namespaced key: ``<prefix><service>:<part>:<part>``."""
    return settings.redis_key_prefix + ":".join([settings.service_name, *map(str, parts)])
