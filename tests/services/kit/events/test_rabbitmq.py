"""The RabbitMQ transport on the real broker: batches, exactly-once effect, outages, dead letters, traces."""

from __future__ import annotations

import asyncio
import threading
import time

import pika
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chaos.broker import PrivateBroker
from services.kit.events.consumer import EventConsumer
from services.kit.events.outbox import OutboxRelay
from services.kit.events.rabbitmq import RabbitBus
from tests.services.kit.events.conftest import INBOX, OUTBOX, Probe

pytestmark = pytest.mark.integration


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _start(probe: Probe, url: str) -> tuple[RabbitBus, OutboxRelay]:
    bus = RabbitBus(url, max_retries=2, retry_base_ms=50)
    consumer = EventConsumer(service="probe", db=probe.db, inbox=INBOX, handlers={"probe.noted": probe.handle})
    await bus.start_consumer(consumer)
    relay = OutboxRelay(service="probe", db=probe.db, outbox=OUTBOX, bus=bus, batch_size=100, poll_interval=0.05)
    await relay.start()
    return bus, relay


async def _stop(bus: RabbitBus, relay: OutboxRelay) -> None:
    await relay.stop()
    await bus.close()


async def test_every_event_arrives_once_through_the_broker(probe: Probe, amqp_url: str) -> None:
    bus, relay = await _start(probe, amqp_url)
    try:
        notes = [f"n{i:04d}" for i in range(500)]
        for start in range(0, 500, 50):
            await probe.record(*notes[start : start + 50])

        async def all_in() -> bool:
            return len(await probe.ledger()) >= 500

        await _until(all_in)
        await asyncio.sleep(0.3)
        assert sorted(await probe.ledger()) == notes
        assert await probe.unsent() == 0
    finally:
        await _stop(bus, relay)


async def test_consumer_span_is_a_child_of_the_publish_span_of_the_recording_span(
    probe: Probe, amqp_url: str, spans: InMemorySpanExporter
) -> None:
    bus, relay = await _start(probe, amqp_url)
    try:
        with trace.get_tracer("test").start_as_current_span("POST /enrollments") as request_span:
            await probe.record("traced")
        await _until(lambda: _has(probe, "traced"))
    finally:
        await _stop(bus, relay)
    finished = spans.get_finished_spans()
    publish = next(s for s in finished if s.name == "probe.noted publish")
    process = next(s for s in finished if s.name == "probe.noted process")
    trace_id = request_span.get_span_context().trace_id
    assert publish.context.trace_id == process.context.trace_id == trace_id
    assert publish.parent is not None and publish.parent.span_id == request_span.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    inserts = [
        s
        for s in finished
        if s.parent is not None and s.parent.span_id == process.context.span_id and s.name.startswith("INSERT")
    ]
    assert inserts, "the handler's own database calls hang under the consumer span"


async def _has(probe: Probe, note: str) -> bool:
    return note in await probe.ledger()


async def test_a_poison_event_is_retried_then_dead_lettered_with_its_error(probe: Probe, amqp_url: str) -> None:
    bus, relay = await _start(probe, amqp_url)
    try:
        await probe.record("before", "poison-pill", "after")
        await _until(lambda: _has(probe, "after"))
        params = pika.URLParameters(amqp_url)

        def dead_message() -> tuple[bytes, dict[str, object]] | None:
            connection = pika.BlockingConnection(params)
            try:
                method, properties, body = connection.channel().basic_get("probe.events.dead", auto_ack=True)
                return (body, dict(properties.headers or {})) if method else None
            finally:
                connection.close()

        deadline = time.monotonic() + 20
        found = None
        while found is None and time.monotonic() < deadline:
            found = await asyncio.to_thread(dead_message)
            await asyncio.sleep(0.1)
        assert found is not None, "the poison event reached the dead-letter queue"
        body, headers = found
        assert b"poison-pill" in body
        assert "cannot handle poison-pill" in str(headers["x-error"]) and headers["x-retries"] == 2
        assert await probe.ledger() == ["before", "after"]
    finally:
        await _stop(bus, relay)


async def test_broker_down_loses_nothing_and_duplicates_nothing(probe: Probe, private_broker: PrivateBroker) -> None:
    bus, relay = await _start(probe, f"amqp://guest:guest@127.0.0.1:{private_broker.port}/%2F")
    try:
        await probe.record("before-outage")
        await _until(lambda: _has(probe, "before-outage"))
        await asyncio.to_thread(private_broker.ctl, "stop_app")  # a node of this test's own: no one else's broker
        try:
            await probe.record(*(f"during-{i}" for i in range(20)))
            await asyncio.sleep(1.0)
            assert await probe.unsent() == 20, "events wait in the outbox while the broker is down"
        finally:
            await asyncio.to_thread(private_broker.ctl, "start_app")

        async def all_in() -> bool:
            return len(await probe.ledger()) == 21

        await _until(all_in, timeout=60)
        await asyncio.sleep(0.5)
        notes = await probe.ledger()
        assert len(notes) == len(set(notes)) == 21
        assert await probe.unsent() == 0
    finally:
        await _stop(bus, relay)


async def test_a_consumer_outlives_an_unexpected_error_from_pika(
    probe: Probe, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a broker restarts pika can raise a ValueError (a socket reset as it connected), not
    # only AMQPError or OSError. The first consumer connection fails that way here.
    real = pika.BlockingConnection
    failed: list[str] = []

    def flaky(params: pika.ConnectionParameters) -> pika.BlockingConnection:
        if threading.current_thread().name.startswith("amqp-consume") and not failed:
            failed.append("once")
            raise ValueError("Expected connected socket, but getpeername() failed")
        return real(params)

    monkeypatch.setattr(pika, "BlockingConnection", flaky)
    bus, relay = await _start(probe, amqp_url)
    try:
        await probe.record("after-the-error")
        await _until(lambda: _has(probe, "after-the-error"), timeout=30)
        assert failed == ["once"]
    finally:
        await _stop(bus, relay)


class _CountingConsumer(EventConsumer):
    """The probe's consumer, remembering how many events each batch it was handed held."""

    def __init__(self, probe: Probe) -> None:
        super().__init__(service="probe", db=probe.db, inbox=INBOX, handlers={"probe.noted": probe.handle})
        self.batches: list[int] = []

    async def handle_batch(self, events):  # type: ignore[no-untyped-def]
        self.batches.append(len(events))
        return await super().handle_batch(events)


@pytest.mark.parametrize("linger", [0.0, 1.5])
async def test_a_lingering_consumer_takes_a_trickle_of_events_in_one_batch(
    probe: Probe, amqp_url: str, linger: float
) -> None:
    bus = RabbitBus(amqp_url, consumer_linger_seconds=linger)
    consumer = _CountingConsumer(probe)
    await bus.start_consumer(consumer)
    relay = OutboxRelay(service="probe", db=probe.db, outbox=OUTBOX, bus=bus, batch_size=100, poll_interval=0.02)
    await relay.start()
    try:
        notes = [f"t{i}" for i in range(4)]
        for note in notes:  # further apart than a quiet queue closes a batch that does not linger
            await probe.record(note)
            await asyncio.sleep(0.15)

        async def all_in() -> bool:
            return len(await probe.ledger()) == len(notes)

        await _until(all_in)
        assert sorted(await probe.ledger()) == notes
    finally:
        await _stop(bus, relay)
    if linger:
        assert consumer.batches == [4]
    else:
        assert len(consumer.batches) > 1 and sum(consumer.batches) == 4
