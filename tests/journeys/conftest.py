from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from cerebrum.platform import Platform
from cerebrum.runner import build_platform
from tests.apps import FAST_HASHING
from tests.conftest import PG_URL, REDIS_URL, require_server
from tests.deploy.distributed import forget_keys, rabbitmqctl


@contextlib.asynccontextmanager
async def serving(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """Every service in this process, set by the overrides alone (no server URL from the
    environment), with a client that calls it as the student's browser at 198.51.100.9 would."""
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    platform = build_platform(overrides={"environment": "test", **FAST_HASHING, **overrides})
    async with platform.running():
        transport = httpx.ASGITransport(app=platform, client=("198.51.100.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://academy") as client:
            yield platform, client


@pytest.fixture
async def embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """The whole embedded platform (SQLite, the Redis stand-in, the in-process bus), in this process."""
    async with serving(monkeypatch, {"data_dir": tmp_path}) as running:
        yield running


@pytest.fixture
async def academy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """Every service in this process on the real servers: a PostgreSQL database (one schema per
    service), a RabbitMQ vhost and a Redis key prefix of this test's own."""
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    database, vhost, prefix = (
        f"t_{uuid.uuid4().hex[:12]}",
        f"test-{uuid.uuid4().hex[:10]}",
        f"test:{uuid.uuid4().hex[:8]}:",
    )
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        await asyncio.to_thread(rabbitmqctl, "add_vhost", vhost)
        await asyncio.to_thread(rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        overrides = {
            "data_dir": tmp_path,
            "database_url": PG_URL.rsplit("/", 1)[0] + f"/{database}",
            "database_pool_size": 3,
            "redis_url": REDIS_URL,
            "redis_key_prefix": prefix,
            "rabbitmq_url": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        }
        async with serving(monkeypatch, overrides) as running:
            yield running
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
        await asyncio.to_thread(forget_keys, prefix)
