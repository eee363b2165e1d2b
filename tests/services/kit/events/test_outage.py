"""A real broker outage, on a RabbitMQ node of the test's own: what the traces and the logs say."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from chaos.broker import PrivateBroker
from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import BusUnavailable
from services.kit.events.outbox import OutboxRelay
from services.kit.events.rabbitmq import RabbitBus
from tests.conftest import LogCapture
from tests.services.kit.events.conftest import INBOX, OUTBOX, Probe

pytestmark = pytest.mark.integration


async def _until_noted(probe: Probe, note: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while note not in await probe.ledger():
        assert time.monotonic() < deadline, f"{note} never arrived"
        await asyncio.sleep(0.05)


async def _relay_until(stop: asyncio.Event, relay: OutboxRelay) -> None:
    """The relay's send, tried every 0.2 s (its own loop's pace and back-off are not what is tested here)."""
    while not stop.is_set():
        try:
            await relay.relay_once()
        except BusUnavailable:
            pass
        await asyncio.sleep(0.2)


async def test_an_outage_shows_failed_publishes_then_the_one_that_worked_and_logs_a_line_per_attempt(
    probe: Probe, private_broker: PrivateBroker, spans: InMemorySpanExporter, logs: LogCapture
) -> None:
    bus = RabbitBus(f"amqp://guest:guest@127.0.0.1:{private_broker.port}/%2F")
    consumer = EventConsumer(service="probe", db=probe.db, inbox=INBOX, handlers={"probe.noted": probe.handle})
    await bus.start_consumer(consumer)
    relay = OutboxRelay(service="probe", db=probe.db, outbox=OUTBOX, bus=bus, batch_size=100)
    stop = asyncio.Event()
    relaying = asyncio.create_task(_relay_until(stop, relay))
    try:
        await probe.record("before")
        await _until_noted(probe, "before")
        logs.clear()
        spans.clear()
        await asyncio.to_thread(private_broker.ctl, "stop_app")  # a node of this test's own
        try:
            with trace.get_tracer("test").start_as_current_span("POST /enrollments") as request:
                await probe.record("during")
            outage_started = time.monotonic()
            await asyncio.sleep(6.0)
            outage = time.monotonic() - outage_started
        finally:
            await asyncio.to_thread(private_broker.ctl, "start_app")
        await _until_noted(probe, "during")
    finally:
        stop.set()
        await relaying
        await bus.close()

    trace_id = request.get_span_context().trace_id
    finished = spans.get_finished_spans()
    publishes = sorted(
        (s for s in finished if s.name == "probe.noted publish" and s.context.trace_id == trace_id),
        key=lambda s: s.start_time or 0,
    )
    assert len(publishes) >= 2
    assert {s.status.status_code for s in publishes[:-1]} == {StatusCode.ERROR}
    assert publishes[-1].status.status_code is StatusCode.UNSET
    (process,) = [s for s in finished if s.name == "probe.noted process" and s.context.trace_id == trace_id]
    assert process.parent is not None and process.parent.span_id == publishes[-1].context.span_id

    lines = logs.lines()
    attempts = [line for line in lines if line.get("event") == "broker_reconnect_failed"]
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert all(a["consumer"] == "probe" and a["next_attempt_in_s"] > 0 for a in attempts)
    # The old loop wrote seven lines a second (pika's own, one with a traceback, and ours).
    consumer_lines = [line for line in lines if line.get("consumer") == "probe"]
    assert len(consumer_lines) <= outage / 0.5 + 2, consumer_lines
    assert sum("exception" in line for line in lines) <= 1, "the traceback at most once"
    assert not [line for line in lines if "Connection workflow failed" in str(line.get("event"))]
