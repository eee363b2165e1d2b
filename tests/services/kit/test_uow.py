"""The unit of work: events are written with the change, later work waits for the commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, select
from sqlalchemy.engine import make_url

from services.contracts.events import UserDeleted
from services.kit.db import Database
from services.kit.errors import Forbidden
from services.kit.events import define_outbox
from services.kit.uow import EventsRecorded, UnitOfWork

metadata = MetaData()
OUTBOX = define_outbox(metadata)
USER = uuid.UUID("6f1c3c0e-7c1a-4a53-9d43-0b1d2b4f8e11")
AUDIT = Table("audit", metadata, Column("id", Integer, primary_key=True), Column("note", String(50)))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(make_url(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}"), schema=None)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    database.record_events_in(OUTBOX, source="users")
    yield database
    await database.dispose()


async def _count(db: Database, table: Table) -> int:
    async with db.unit_of_work() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_an_event_is_written_with_the_change_and_work_waits_for_the_commit(db: Database) -> None:
    woken: list[str] = []
    db.when_committed(EventsRecorded, lambda _: woken.append("relay"))
    async with db.unit_of_work() as uow:
        await uow.session.execute(AUDIT.insert().values(note="deleted"))
        await uow.record(UserDeleted(user_id=USER))
        uow.after_commit(lambda: woken.append("cache"))
        assert woken == [], "nothing runs before the commit"
    assert woken == ["relay", "cache"]
    async with db.unit_of_work() as uow:
        row = (await uow.session.execute(select(OUTBOX))).one()
    assert row.event_type == "user.deleted"
    assert row.payload["source"] == "users"
    assert row.payload["data"]["user_id"] == str(USER)


async def test_the_events_of_a_transaction_are_written_in_one_statement_in_the_order_recorded(db: Database) -> None:
    outbox_inserts: list[int] = []

    def count(_conn: object, _cursor: object, statement: str, params: object, _ctx: object, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            outbox_inserts.append(len(params) if many else 1)  # type: ignore[arg-type]

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    users = [uuid.uuid4() for _ in range(3)]
    async with db.unit_of_work() as uow:
        await uow.record(UserDeleted(user_id=users[0]))
        await uow.session.execute(AUDIT.insert().values(note="deleted"))
        await uow.record(UserDeleted(user_id=users[1]))

        async def fold() -> None:  # a write folded before the commit may record an event too
            await uow.record(UserDeleted(user_id=users[2]))

        uow.before_commit(fold)
        assert outbox_inserts == [], "nothing is written to the outbox before the commit"
    assert outbox_inserts == [3]
    async with db.unit_of_work() as uow:
        rows = (await uow.session.execute(select(OUTBOX).order_by(OUTBOX.c.created_at))).all()
    assert [row.payload["data"]["user_id"] for row in rows] == [str(u) for u in users]


async def test_a_rolled_back_transaction_keeps_no_event_and_runs_no_later_work(db: Database) -> None:
    woken: list[str] = []
    db.when_committed(EventsRecorded, lambda _: woken.append("relay"))
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.record(UserDeleted(user_id=USER))
            uow.after_commit(lambda: woken.append("cache"))
            raise RuntimeError("boom")
    assert woken == []
    assert await _count(db, OUTBOX) == 0


async def test_work_folded_over_a_transaction_is_written_once_in_it_before_the_commit(db: Database) -> None:
    notes: list[str] = []

    async def write_folded() -> None:
        await uow.session.execute(AUDIT.insert().values(note="+".join(notes)))

    async with db.unit_of_work() as uow:
        uow.before_commit(write_folded)
        notes.extend(["mitosis", "meiosis"])  # what the transaction's steps added after registering it
        assert await _count(db, AUDIT) == 0
    async with db.unit_of_work() as uow:
        assert (await uow.session.execute(select(AUDIT.c.note))).scalars().all() == ["mitosis+meiosis"]


async def test_a_failing_folded_write_commits_nothing_and_a_rollback_drops_it(db: Database) -> None:
    async def refuse() -> None:
        raise RuntimeError("aggregate row out of range")

    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.session.execute(AUDIT.insert().values(note="kept only with the folded write"))
            uow.before_commit(refuse)
    assert await _count(db, AUDIT) == 0

    written: list[str] = []

    async def write() -> None:
        written.append("written")

    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            uow.before_commit(write)
            raise RuntimeError("the handler failed")
    assert written == []


async def test_a_transaction_that_records_nothing_does_not_wake_the_relay(db: Database) -> None:
    woken: list[str] = []
    db.when_committed(EventsRecorded, lambda _: woken.append("relay"))
    async with db.unit_of_work() as uow:
        await uow.session.execute(AUDIT.insert().values(note="read"))
    assert woken == []


async def test_a_refusal_rolls_back_unless_its_writes_are_kept(db: Database) -> None:
    with pytest.raises(Forbidden):
        async with db.unit_of_work() as uow:
            await uow.session.execute(AUDIT.insert().values(note="dropped"))
            raise Forbidden("no")
    with pytest.raises(Forbidden):
        async with db.unit_of_work() as uow:
            await uow.session.execute(AUDIT.insert().values(note="kept"))
            uow.keep_changes()
            raise Forbidden("no")
    async with db.unit_of_work() as uow:
        notes = (await uow.session.execute(select(AUDIT.c.note))).scalars().all()
    assert notes == ["kept"]


async def test_record_takes_a_contract_model_and_nothing_else(db: Database) -> None:
    async with db.unit_of_work() as uow:
        with pytest.raises(TypeError):
            await uow.record({"user_id": "u"})  # type: ignore[arg-type]
    assert await _count(db, OUTBOX) == 0


async def test_code_handed_the_session_reaches_its_unit_of_work(db: Database) -> None:
    async with db.session_scope() as session:
        assert UnitOfWork.of(session).session is session


async def test_an_announced_fact_reaches_its_listeners_only_after_the_commit(db: Database) -> None:
    class SeatFreed:
        def __init__(self, course: str) -> None:
            self.course = course

    heard: list[str] = []
    db.when_committed(SeatFreed, lambda fact: heard.append(fact.course))
    async with db.unit_of_work() as uow:
        uow.announce(SeatFreed("physics"))
        assert heard == []
    assert heard == ["physics"]
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            uow.announce(SeatFreed("chemistry"))
            raise RuntimeError("boom")
    assert heard == ["physics"]
