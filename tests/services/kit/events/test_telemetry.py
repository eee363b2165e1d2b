"""What the event bus tells an SRE: publish spans that are the real publish, consumer work inside
its event's trace, and counters whose ``event`` label is bounded and exists from start-up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from services.kit.events import Event
from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import BusUnavailable, EventSink, OutgoingMessage
from services.kit.events.inprocess import InProcessBus
from services.kit.events.outbox import OutboxRelay
from services.kit.time import utcnow
from tests.services.kit.events.conftest import INBOX, OUTBOX, Probe

pytestmark = pytest.mark.integration


@dataclass
class RefusingBus:
    """An in-process bus whose broker refuses the first ``refusals`` publishes, as one that is down."""

    bus: InProcessBus
    refusals: int

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise BusUnavailable("AMQPConnectionError: connection refused")
        await self.bus.publish(messages)

    async def start_consumer(self, sink: EventSink) -> None:
        await self.bus.start_consumer(sink)

    async def close(self) -> None:
        await self.bus.close()


async def _wired(probe: Probe, refusals: int = 0, service: str = "probe") -> tuple[OutboxRelay, EventConsumer]:
    bus = InProcessBus(max_retries=1, retry_base_seconds=0.001)
    consumer = EventConsumer(service=service, db=probe.db, inbox=INBOX, handlers={"probe.noted": probe.handle})
    await bus.start_consumer(consumer)
    return OutboxRelay(service=service, db=probe.db, outbox=OUTBOX, bus=RefusingBus(bus, refusals)), consumer


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans.get_finished_spans() if s.name == name), key=lambda s: s.start_time or 0)


def _children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s for s in spans.get_finished_spans() if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_a_refused_publish_is_an_error_span_and_the_consumer_is_a_child_of_the_publish_that_worked(
    probe: Probe, spans: InMemorySpanExporter
) -> None:
    relay, _ = await _wired(probe, refusals=2)
    with trace.get_tracer("test").start_as_current_span("POST /enrollments") as request:
        await probe.record("during-the-outage")
    for _ in range(2):
        with pytest.raises(BusUnavailable):
            await relay.relay_once()
    assert await relay.relay_once() == 1

    publishes = _named(spans, "probe.noted publish")
    assert [s.status.status_code for s in publishes] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    request_id = request.get_span_context().span_id
    assert all(s.kind is SpanKind.PRODUCER and s.parent and s.parent.span_id == request_id for s in publishes)
    for failed in publishes[:2]:
        assert [e.name for e in failed.events] == ["exception"]
        assert failed.attributes is not None and failed.attributes["error.type"] == "BusUnavailable"
    (process,) = _named(spans, "probe.noted process")
    assert process.parent is not None and process.parent.span_id == publishes[-1].context.span_id


async def test_one_event_is_claimed_handled_and_committed_inside_its_consumer_span(
    probe: Probe, spans: InMemorySpanExporter
) -> None:
    relay, _ = await _wired(probe)
    with trace.get_tracer("test").start_as_current_span("POST /progress") as request:
        await probe.record("alone")
    await relay.relay_once()

    (process,) = _named(spans, "probe.noted process")
    assert process.context.trace_id == request.get_span_context().trace_id
    statements = [_statement(s) for s in _children(spans, process)]
    assert [st.split("(")[0].strip() for st in statements if st.startswith("INSERT")] == [
        'INSERT INTO "inbox"',
        "INSERT INTO ledger",
    ], "the inbox claim, then the handler's own row"
    assert process.attributes is not None and process.attributes["cerebrum.event.outcome"] == "handled"


def _statement(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("db.statement", ""))


async def test_a_batch_of_several_requests_events_claims_them_in_one_span_linked_to_each_publish(
    probe: Probe, spans: InMemorySpanExporter
) -> None:
    relay, _ = await _wired(probe)
    requests = []
    for note in ("haploid", "diploid", "triploid"):
        with trace.get_tracer("test").start_as_current_span(f"POST /notes/{note}") as request:
            await probe.record(note)
        requests.append(request.get_span_context())
    assert await relay.relay_once() == 3

    (batch,) = _named(spans, "probe.events process")
    publishes = _named(spans, "probe.noted publish")
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in publishes}
    claim = [s for s in _children(spans, batch) if _statement(s).startswith('INSERT INTO "inbox"')]
    assert claim, "the inbox claim of the batch happens inside the batch's span"
    # Each handler still runs in its own request's trace, under that event's publish span.
    handlers = _named(spans, "probe.noted process")
    assert {s.context.trace_id for s in handlers} == {r.trace_id for r in requests}
    assert {s.parent.span_id for s in handlers if s.parent} == {s.context.span_id for s in publishes}


def _event(type_: str) -> Event:
    return Event(id=uuid.uuid4(), type=type_, source="test", occurred_at=utcnow(), data={"note": "x"})


def _consumed(service: str, event: str, outcome: str) -> float | None:
    return REGISTRY.get_sample_value(
        "cerebrum_events_consumed_total", {"service": service, "event": event, "outcome": outcome}
    )


async def test_the_event_label_is_bounded_and_an_event_nobody_handles_is_ignored(probe: Probe) -> None:
    service = f"probe{uuid.uuid4().hex[:6]}"
    _, consumer = await _wired(probe, service=service)
    made_up = f"made.up.{uuid.uuid4().hex}"
    errors = await consumer.handle_batch([_event(made_up), _event("user.deleted"), _event("probe.noted")])
    assert errors == [None, None, None]
    assert _consumed(service, made_up, "handled") is None and _consumed(service, made_up, "ignored") is None
    assert _consumed(service, "unknown", "ignored") == 1
    assert _consumed(service, "user.deleted", "ignored") == 1  # a contract's event, but no handler here
    assert _consumed(service, "user.deleted", "handled") is None
    assert _consumed(service, "probe.noted", "handled") == 1


async def test_the_counters_alerts_read_exist_at_zero_from_start_up(probe: Probe) -> None:
    service = f"probe{uuid.uuid4().hex[:6]}"
    await _wired(probe, service=service)
    labels: dict[str, Any] = {"service": service, "event": "probe.noted"}
    assert REGISTRY.get_sample_value("cerebrum_events_dead_lettered_total", labels) == 0
    assert REGISTRY.get_sample_value("cerebrum_events_retried_total", labels) == 0
    assert REGISTRY.get_sample_value("cerebrum_events_dead_lettered_total", {**labels, "event": "unknown"}) == 0
    for outcome in ("handled", "duplicate", "failed"):
        assert _consumed(service, "probe.noted", outcome) == 0
