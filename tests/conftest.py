"""Shared fixtures: telemetry captured in memory, and real servers with a private space per test."""

from __future__ import annotations

import io
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from observability import configure_logging, configure_tracing, instrument_libraries

PG_URL = os.environ.get("CEREBRUM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CEREBRUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    "RabbitMQ": "rabbitmq-server -detached",
}


class LogCapture(io.TextIOBase):
    """A text stream with a binary buffer, as structlog and the logging module both write to."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, s: str) -> int:
        self.buffer.write(s.encode())
        return len(s)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.buffer.getvalue().splitlines():
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return out

    def text(self) -> str:
        return self.buffer.getvalue().decode()

    def clear(self) -> None:
        # Truncated in place: the loggers hold on to this very buffer.
        self.buffer.seek(0)
        self.buffer.truncate()


_SPANS = InMemorySpanExporter()
_LOGS = LogCapture()


@pytest.fixture(scope="session", autouse=True)
def _telemetry() -> None:
    configure_logging(service="tests", level="INFO", stream=_LOGS)
    configure_tracing(
        service_name="cerebrum-tests",
        service_version="test",
        environment="test",
        extra_processors=[SimpleSpanProcessor(_SPANS)],
        env={},
    )
    instrument_libraries("sqlalchemy", "redis", "aiohttp")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _SPANS.clear()
    yield _SPANS


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    _LOGS.clear()
    yield _LOGS


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, port: int) -> None:
    if not _reachable("127.0.0.1", port):
        pytest.fail(f"{name} is not running on 127.0.0.1:{port}; start it with: {START_HINTS[name]}")


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    require_server("PostgreSQL", 5432)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    require_server("Redis", 6379)
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        keys += [k async for k in client.scan_iter(match="LIMITS:" + prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
