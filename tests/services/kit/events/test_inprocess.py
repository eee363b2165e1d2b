"""The embedded bus: outbox → relay → idempotent consumer, in one process."""

from __future__ import annotations

import pytest

from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import OutgoingMessage, encode
from services.kit.events.inprocess import InProcessBus
from services.kit.events.outbox import OutboxRelay
from services.kit.time import utcnow
from tests.services.kit.events.conftest import INBOX, OUTBOX, Probe

pytestmark = pytest.mark.integration


async def _wired(probe: Probe) -> tuple[InProcessBus, OutboxRelay, EventConsumer]:
    bus = InProcessBus(max_retries=2, retry_base_seconds=0.001)
    consumer = EventConsumer(service="probe", db=probe.db, inbox=INBOX, handlers={"probe.noted": probe.handle})
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

            await record_event(session, OUTBOX, type_="probe.noted", source="probe", data={"note": "ghost"})
            raise RuntimeError("the change failed")
    assert await probe.unsent() == 0
