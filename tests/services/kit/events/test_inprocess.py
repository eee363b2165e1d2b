"""The embedded bus: outbox → relay → idempotent consumer, in one process."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.events import Event, record_event
from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import Handler, OutgoingMessage, encode, in_batches
from services.kit.events.inprocess import InProcessBus
from services.kit.events.outbox import OutboxRelay
from services.kit.time import utcnow
from tests.services.kit.events.conftest import INBOX, LEDGER, OUTBOX, Probe, ProbeNoted, ProbeOther

pytestmark = pytest.mark.integration


async def _wired(
    probe: Probe, handlers: dict[str, Handler] | None = None, bus: InProcessBus | None = None
) -> tuple[InProcessBus, OutboxRelay, EventConsumer]:
    """The probe's consumer (its handlers, by default one event at a time) on an in-process bus, and a relay."""
    bus = bus or InProcessBus(max_retries=2, retry_base_seconds=0.001)
    consumer = EventConsumer(
        service="probe", db=probe.db, inbox=INBOX, handlers=handlers or {"probe.noted": probe.handle}
    )
    await bus.start_consumer(consumer)
    return bus, OutboxRelay(service="probe", db=probe.db, outbox=OUTBOX, bus=bus), consumer


async def test_recorded_events_are_delivered_once_in_order(probe: Probe) -> None:
    _, relay, _ = await _wired(probe)
    await probe.record("mitosis", "meiosis", "osmosis")
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    assert await probe.ledger() == ["mitosis", "meiosis", "osmosis"]
    assert await probe.unsent() == 0


async def test_an_event_delivered_twice_changes_nothing(probe: Probe) -> None:
    bus, relay, _ = await _wired(probe)
    await probe.record("once")
    await relay.relay_once()
    async with probe.db.session_scope() as session:
        row = (await session.execute(OUTBOX.select())).one()
    again = OutgoingMessage(
        row.id,
        row.event_type,
        encode(event_id=row.id, type_=row.event_type, source="probe", occurred_at=utcnow(), data=row.payload["data"]),
        {},
    )
    await bus.publish([again, again])
    assert await probe.ledger() == ["once"]


async def test_a_failing_event_is_retried_and_then_dead_lettered_without_blocking_others(probe: Probe) -> None:
    bus, relay, _ = await _wired(probe)
    probe.failures["flaky"] = 1
    await probe.record("good", "poison-pill", "flaky", "after")
    await relay.relay_once()
    assert await probe.ledger() == ["good", "after", "flaky"]
    assert [d.event.data["note"] for d in bus.dead_letters] == ["poison-pill"]
    assert "cannot handle poison-pill" in bus.dead_letters[0].error


async def test_events_committed_before_a_crash_go_out_after_restart(probe: Probe) -> None:
    await probe.record("written-before-crash")  # committed; the process "died" before relaying
    assert await probe.unsent() == 1
    _, relay, _ = await _wired(probe)  # the restarted process
    await relay.relay_once()
    assert await probe.ledger() == ["written-before-crash"]


async def test_a_rolled_back_change_publishes_nothing(probe: Probe) -> None:
    with pytest.raises(RuntimeError):
        async with probe.db.session_scope() as session:
            from services.kit.events import record_event

            await record_event(session, OUTBOX, ProbeNoted(note="ghost"), source="probe")
            raise RuntimeError("the change failed")
    assert await probe.unsent() == 0


async def test_a_batch_handler_takes_consecutive_new_events_together_and_never_a_duplicate(probe: Probe) -> None:
    calls: list[list[str]] = []

    async def handle_many(events: Sequence[Event], session: Any) -> None:
        calls.append([e.data["note"] for e in events])
        await session.execute(LEDGER.insert(), [{"event_id": e.id, "note": e.data["note"]} for e in events])

    handlers: dict[str, Handler] = {"probe.noted": in_batches(handle_many), "probe.other": probe.handle}
    bus, relay, _ = await _wired(probe, handlers, InProcessBus())
    await probe.record("prophase", "metaphase")
    async with probe.db.session_scope() as session:
        await record_event(session, OUTBOX, ProbeOther(note="interlude"), source="probe")
    await probe.record("anaphase")
    assert await relay.relay_once() == 4
    assert calls == [["prophase", "metaphase"], ["anaphase"]]  # order kept around the other type
    assert await probe.ledger() == ["prophase", "metaphase", "interlude", "anaphase"]

    async with probe.db.session_scope() as session:
        rows = (await session.execute(OUTBOX.select().order_by(OUTBOX.c.created_at))).all()
    again = [
        OutgoingMessage(r.id, r.event_type, encode(event_id=r.id, type_=r.event_type, source="probe",
                                                   occurred_at=utcnow(), data=r.payload["data"]), {})
        for r in rows
    ]  # fmt: skip
    await bus.publish(again)
    assert calls == [["prophase", "metaphase"], ["anaphase"]]
    assert len(await probe.ledger()) == 4


async def test_a_failing_batch_handler_is_retried_event_by_event(probe: Probe) -> None:
    async def handle_many(events: Sequence[Event], session: Any) -> None:
        for event in events:
            await probe.handle(event, session)

    bus, relay, _ = await _wired(
        probe, {"probe.noted": in_batches(handle_many)}, InProcessBus(max_retries=1, retry_base_seconds=0.001)
    )
    await probe.record("good", "poison-pill", "after")
    await relay.relay_once()
    assert await probe.ledger() == ["good", "after"]
    assert [d.event.data["note"] for d in bus.dead_letters] == ["poison-pill"]


async def test_a_batch_handler_span_links_every_event_it_took(probe: Probe, spans: InMemorySpanExporter) -> None:
    async def handle_many(events: Sequence[Event], session: Any) -> None:
        await session.execute(LEDGER.insert(), [{"event_id": e.id, "note": e.data["note"]} for e in events])

    _, relay, _ = await _wired(probe, {"probe.noted": in_batches(handle_many)}, InProcessBus())
    await probe.record("haploid", "diploid", "triploid")
    await relay.relay_once()
    finished = spans.get_finished_spans()
    publishes = {s.context.span_id for s in finished if s.name == "probe.noted publish"}
    (process,) = [s for s in finished if s.name == "probe.noted process"]
    assert len(publishes) == 3 and {link.context.span_id for link in process.links} == publishes
    assert process.attributes is not None and process.attributes["messaging.batch.message_count"] == 3


async def test_a_read_ahead_sees_a_batchs_new_events_once_before_their_handlers(probe: Probe) -> None:
    seen: list[tuple[str, ...]] = []

    async def read_ahead(events: Sequence[Event], session: Any) -> None:
        seen.append(("ahead", *(e.data["note"] for e in events)))
        session.info["read ahead"] = True

    async def handle(event: Event, session: Any) -> None:
        seen.append((event.data["note"], "in its session" if session.info.get("read ahead") else "alone"))
        await probe.handle(event, session)

    consumer = EventConsumer(
        service="probe", db=probe.db, inbox=INBOX, handlers={"probe.noted": handle}, read_ahead=read_ahead
    )

    def noted(note: str) -> Event:
        return Event(id=uuid.uuid4(), type="probe.noted", source="probe", occurred_at=utcnow(), data={"note": note})

    prophase, metaphase, anaphase, telophase = (noted(n) for n in ("prophase", "metaphase", "anaphase", "telophase"))
    assert await consumer.handle_batch([prophase, metaphase]) == [None, None]
    # Redelivered beside new ones: only the new are read ahead; a batch with one new event is not.
    assert await consumer.handle_batch([metaphase, anaphase, telophase]) == [None, None, None]
    assert await consumer.handle_batch([telophase, noted("cytokinesis")]) == [None, None]
    assert seen == [
        ("ahead", "prophase", "metaphase"),
        ("prophase", "in its session"),
        ("metaphase", "in its session"),
        ("ahead", "anaphase", "telophase"),
        ("anaphase", "in its session"),
        ("telophase", "in its session"),
        ("cytokinesis", "alone"),
    ]
    assert await probe.ledger() == ["prophase", "metaphase", "anaphase", "telophase", "cytokinesis"]
