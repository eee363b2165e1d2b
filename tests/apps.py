"""Builds service apps for tests: on the real servers, or embedded (SQLite and the Redis stand-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import PG_URL, REDIS_URL

FAST_HASHING = {"password_time_cost": 1, "password_memory_kib": 1024}


def real_servers(schema: str, prefix: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "environment": "test",
        "database_url": PG_URL,
        "database_schema": schema,
        "redis_url": REDIS_URL,
        "redis_key_prefix": prefix,
        "data_dir": tmp_path,
    }


def embedded(tmp_path: Path) -> dict[str, Any]:
    return {"environment": "test", "data_dir": tmp_path, "redis_key_prefix": "cerebrum:"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Runs an app's lifespan and yields a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
