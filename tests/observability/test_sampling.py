"""Library instrumentation skips the work of spans the sampler drops, and only those."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
import sqlalchemy.ext.asyncio
from aiohttp import web
from opentelemetry import context, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy import text

from observability.sampling import child_dropped
from tests.conftest import REDIS_URL, free_port

UNSAMPLED = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0x00F067AA0BA902B7, False, TraceFlags(0x02))


@contextmanager
def unsampled_request() -> Iterator[None]:
    """What an unsampled server span looks like to the code under it."""
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(UNSAMPLED)))
    try:
        yield
    finally:
        context.detach(token)


def test_only_children_of_an_unsampled_span_are_known_dropped() -> None:
    assert not child_dropped(), "outside a span the sampler makes a root decision"
    with unsampled_request():
        assert child_dropped()
    with trace.get_tracer("test").start_as_current_span("sampled"):
        assert not child_dropped()


@pytest.mark.integration
async def test_redis_commands_under_an_unsampled_span_leave_no_span(spans: InMemorySpanExporter) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        with unsampled_request():
            await client.set("test:sampling:k", "v", ex=5)
            assert await client.get("test:sampling:k") == b"v"
            async with client.pipeline() as pipe:
                await pipe.get("test:sampling:k").execute()
        assert spans.get_finished_spans() == ()
        with trace.get_tracer("test").start_as_current_span("request"):
            await client.get("test:sampling:k")
        get = next(s for s in spans.get_finished_spans() if s.name == "GET")
        assert get.attributes is not None and get.attributes["db.system"] == "redis"
        assert get.attributes["db.statement"] == "GET ?"
    finally:
        await client.aclose()


async def test_sql_under_an_unsampled_span_leaves_no_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    # Looked up now: the instrumentation wraps the module's function when the session starts.
    engine = sqlalchemy.ext.asyncio.create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'sampling.db'}")
    try:
        with unsampled_request():
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert spans.get_finished_spans() == ()
        with trace.get_tracer("test").start_as_current_span("request"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 2"))
        names = [s.name for s in spans.get_finished_spans()]
        assert "connect" in names and any(name.startswith("SELECT") for name in names)
    finally:
        await engine.dispose()


async def test_an_unsampled_call_still_carries_its_trace_and_a_sampled_one_gets_its_span(
    spans: InMemorySpanExporter,
) -> None:
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            with unsampled_request():
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
            assert spans.get_finished_spans() == ()
            with trace.get_tracer("test").start_as_current_span("request"):
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    assert seen[0] == f"00-{UNSAMPLED.trace_id:032x}-{UNSAMPLED.span_id:016x}-02"
    client = next(s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT)
    assert seen[1] is not None and f"{client.context.span_id:016x}" in seen[1] and seen[1].endswith("-03")
