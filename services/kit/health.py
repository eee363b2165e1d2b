"""Readiness checks: each dependency is probed with a short timeout and named when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pika
import redis.asyncio as aioredis

from services.kit.db import Database

Check = Callable[[], Awaitable[None]]


def database_check(db: Database) -> Check:
    return db.ping


def redis_check(client: aioredis.Redis) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def broker_check(url: str) -> Check:
    def connect() -> None:
        params = pika.URLParameters(url)
        params.socket_timeout = 2
        params.blocked_connection_timeout = 2
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()

    async def check() -> None:
        await asyncio.to_thread(connect)

    return check


async def run_checks(checks: dict[str, Check], timeout: float = 3.0) -> dict[str, str]:
    """Runs every check at once; returns ``{name: "ok" | reason}``."""

    async def one(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), timeout)
            return "ok"
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except Exception as exc:  # a readiness probe reports every failure, whatever its kind
            return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))
