"""The unit of work: one transaction of a request or a consumer, the events it records, and the
work that waits for its commit.

A request or a consumer opens one (``Database.unit_of_work``); repositories and services never
commit. ``record(event)`` writes the event's outbox row in the same transaction, so the event
exists exactly when the change it describes does; ``after_commit(fn)`` holds work (waking the
relay, dropping cached copies, counting a delivery) until the commit has succeeded. A domain error
rolls the transaction back unless the code refusing called ``keep_changes()`` first: a refusal
that is itself a fact to keep (an audit row, a revoked token family).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from opentelemetry import propagate
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.contracts.events import Payload
from services.kit.errors import DomainError
from services.kit.statements import insert_into
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.uow")

# Where a session keeps the unit of work that owns it, for code handed only the session.
_KEY = "unit_of_work"


@dataclass(frozen=True)
class EventsRecorded:
    """What a transaction that recorded events announces to the outbox relay once it commits."""


EVENTS_RECORDED = EventsRecorded()
Listeners = Mapping[type, Sequence[Callable[[Any], None]]]


@dataclass(frozen=True)
class Outbox:
    """Where a service's events go: its outbox table, and the name they are published from."""

    table: Table
    source: str


class UnitOfWork:
    """One transaction: the session, the events recorded in it, and what runs once it commits."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: Outbox | None = None,
        listeners: Listeners | None = None,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self._listeners = listeners or {}
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._announced: list[object] = []
        self._outbox_rows: dict[Table, list[dict[str, Any]]] = {}
        self._keep_changes = False
        self.ended = 0
        """How many times the session's transaction has committed or rolled back: work kept for one
        transaction (a fold for ``before_commit``) knows by it that a new one has begun."""
        session.info[_KEY] = self

    @staticmethod
    def of(session: AsyncSession) -> UnitOfWork:
        """The unit of work that owns the session (for code that was handed the session)."""
        uow: UnitOfWork = session.info[_KEY]
        return uow

    async def record(self, event: Payload) -> uuid.UUID:
        """Writes the event into the service's outbox, in this transaction."""
        if self.outbox is None:
            raise RuntimeError("this database has no outbox to record events in")
        return await self.record_in(self.outbox.table, event, source=self.outbox.source)

    async def record_in(self, table: Table, event: Payload, *, source: str) -> uuid.UUID:
        """Writes the event into the given outbox table (the kit's own probes and benches).

        The row is written just before the commit, with every other event the transaction
        recorded, in one statement: a request or a batch that records several events pays for
        one INSERT, and none is written for a transaction that rolls back.
        """
        if not isinstance(event, Payload):
            raise TypeError(f"record takes a contract model (services.contracts.events), not {type(event).__name__}")
        event_id = uuid.uuid4()
        now = utcnow()
        payload = {
            "id": str(event_id),
            "type": event.event_type,
            "source": source,
            "occurred_at": now.isoformat(),
            "data": event.data(),
        }
        # The recording request's trace context travels with the row, so the relay's publish span
        # and the consumer's work join that request's trace.
        headers: dict[str, str] = {}
        propagate.inject(headers)
        row = {
            "id": event_id,
            "event_type": event.event_type,
            "payload": payload,
            "headers": headers,
            "created_at": now,
        }
        self._outbox_rows.setdefault(table, []).append(row)
        if EVENTS_RECORDED not in self._announced:
            self.announce(EVENTS_RECORDED)
        return event_id

    def announce(self, fact: object) -> None:
        """Hands the fact to the database's listeners for its type once the transaction has committed.

        For in-process workers that drain what a transaction wrote (the relay, a dispatcher): the
        code writing knows the fact, the worker listens for its type (``Database.when_committed``).
        """
        self._announced.append(fact)

    def before_commit(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Awaits fn just before the transaction commits, in its transaction; if fn fails, nothing commits.

        For writes folded across what the transaction did (several events' additions to one
        aggregate row): written once, at the end, instead of once per event.
        """
        self._before_commit.append(fn)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Runs fn once the transaction has committed; never if it rolls back."""
        self._after_commit.append(fn)

    def keep_changes(self) -> None:
        """Commits this transaction's writes even though a domain error is about to refuse the request."""
        self._keep_changes = True

    @property
    def keeps_changes(self) -> bool:
        return self._keep_changes

    async def commit(self) -> None:
        pending, self._before_commit = self._before_commit, []
        for write in pending:
            await write()
        rows, self._outbox_rows = self._outbox_rows, {}
        for table, recorded in rows.items():
            await self.session.execute(insert_into(table), recorded)
        await self.session.commit()
        self.ended += 1
        facts, self._announced = self._announced, []
        work: list[Callable[[], None]] = [
            partial(listener, fact) for fact in facts for listener in self._listeners.get(type(fact), ())
        ]
        work.extend(self._after_commit)
        self._after_commit = []
        for fn in work:
            try:
                fn()
            except Exception:  # the commit stands: later work failing must not report it as failed
                log.exception("after_commit_failed", work=getattr(fn, "__qualname__", repr(fn)))

    async def rollback(self) -> None:
        self._before_commit.clear()
        self._after_commit.clear()
        self._announced.clear()
        self._outbox_rows.clear()
        self.ended += 1
        await self.session.rollback()


@asynccontextmanager
async def open_unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    outbox: Outbox | None = None,
    listeners: Listeners | None = None,
) -> AsyncIterator[UnitOfWork]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    async with sessionmaker() as session:
        uow = UnitOfWork(session, outbox=outbox, listeners=listeners)
        try:
            yield uow
            await uow.commit()
        except DomainError:
            if uow.keeps_changes:
                await uow.commit()
            else:
                await uow.rollback()
            raise
        except BaseException:
            await uow.rollback()
            raise
