"""Background work on the embedded platform: idle polls make no trace; work found joins its cause's trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event

from cerebrum.platform import Platform
from tests.journeys.conftest import serving

# Every job polls several times a second, so a few seconds of idling make dozens of polls.
POLL_OFTEN = {
    "saga_recovery_interval_seconds": 0.1,
    "order_expiry_interval_seconds": 0.1,
    "aggregator_interval_seconds": 0.1,
    "dispatcher_interval_seconds": 0.1,
    "dispatcher_enabled": True,
}


@pytest.fixture
async def platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    async with serving(monkeypatch, {"data_dir": tmp_path, **POLL_OFTEN}) as running:
        yield running


def _count_queries(platform: Platform) -> list[int]:
    counted = [0]

    def count(*_args: Any) -> None:
        counted[0] += 1

    for app in platform.apps.values():
        event.listen(app.state.kit.db.engine.sync_engine, "before_cursor_execute", count)
    return counted


async def test_an_idle_platform_makes_no_trace(
    platform: tuple[Platform, httpx.AsyncClient], spans: InMemorySpanExporter
) -> None:
    running, _ = platform
    await asyncio.sleep(0.5)  # past the start-up work (migrations, seeds, partitions)
    queries = _count_queries(running)
    spans.clear()
    await asyncio.sleep(3)
    roots = [s.name for s in spans.get_finished_spans() if s.parent is None]
    assert queries[0] > 50, "the jobs did not poll"
    assert roots == [], f"{len(roots)} root spans from {queries[0]} idle polls: {sorted(set(roots))}"


def _trace_of(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    (marker,) = [s for s in spans if s.name == name]
    assert marker.context is not None
    return [s for s in spans if s.context is not None and s.context.trace_id == marker.context.trace_id]


async def test_the_welcome_notification_is_sent_in_the_registration_s_trace(
    platform: tuple[Platform, httpx.AsyncClient], spans: InMemorySpanExporter
) -> None:
    _, client = platform
    spans.clear()
    body = {"email": "ada@example.com", "password": "Mitochondria-42", "full_name": "Ada Lovelace"}
    assert (await client.post("/api/auth/register", json=body)).status_code == 201
    for _ in range(200):
        if any(s.name == "notification.send" for s in spans.get_finished_spans()):
            break
        await asyncio.sleep(0.05)
    finished = list(spans.get_finished_spans())
    registration = _trace_of(finished, "POST /auth/register")  # the users service's span
    (send,) = [s for s in finished if s.name == "notification.send"]
    assert send in registration, "the send is a trace of its own"
    (root,) = [s for s in registration if s.parent is None]
    assert root.name == "POST /api/{path}"  # one trace from the gateway to the mail
    assert send.attributes is not None and send.attributes["cerebrum.notification.channel"] == "email"
