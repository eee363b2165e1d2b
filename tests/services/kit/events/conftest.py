"""A probe service for the event bus: an outbox, an inbox and a ledger its handler writes to."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select

from chaos.broker import PrivateBroker
from services.contracts.events import Payload
from services.kit.db import Database, async_url
from services.kit.events import Event, define_inbox, define_outbox, record_event
from tests.conftest import PG_URL, require_server

metadata = MetaData()
OUTBOX = define_outbox(metadata)
INBOX = define_inbox(metadata)
LEDGER = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("note", String(100)),
)


class ProbeNoted(Payload):
    """The probe service's own event: only the probe's queue ever sees it."""

    event_type = "probe.noted"
    note: str


class ProbeOther(Payload):
    event_type = "probe.other"
    note: str


@dataclass
class Probe:
    db: Database
    failures: dict[str, int] = field(default_factory=dict)

    async def handle(self, event: Event, session: Any) -> None:
        """Writes one ledger row; fails while the event's note asks it to."""
        note = event.data.get("note", "")
        if note.startswith("poison") or self.failures.get(note, 0) > 0:
            self.failures[note] = self.failures.get(note, 0) - 1
            raise RuntimeError(f"cannot handle {note}")
        await session.execute(LEDGER.insert().values(event_id=event.id, note=note))

    async def record(self, *notes: str) -> None:
        async with self.db.session_scope() as session:
            for note in notes:
                await record_event(session, OUTBOX, ProbeNoted(note=note), source="probe")

    async def ledger(self) -> list[str]:
        async with self.db.session_scope() as session:
            return list((await session.execute(select(LEDGER.c.note).order_by(LEDGER.c.id))).scalars())

    async def unsent(self) -> int:
        async with self.db.session_scope() as session:
            query = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
            return int((await session.execute(query)).scalar_one())


@pytest.fixture
async def probe(pg_schema: str) -> AsyncIterator[Probe]:
    db = Database(async_url(PG_URL), schema=pg_schema, pool_size=5)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Probe(db)
    await db.dispose()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own, deleted afterwards."""
    require_server("RabbitMQ", 5672)
    vhost = f"test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def private_broker() -> Iterator[PrivateBroker]:
    """A RabbitMQ node of this test's own, for tests that stop the broker: the shared one stays up."""
    broker = PrivateBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
