"""The outbox: events written with the change they describe, then relayed to the bus in batches."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import structlog
from opentelemetry.trace import Span, set_span_in_context
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import Payload
from services.kit.db import Database
from services.kit.events.contracts import BusUnavailable, EventBus, OutgoingMessage, encode
from services.kit.events.telemetry import (
    OUTBOX_AGE,
    OUTBOX_PENDING,
    PUBLISHED,
    RELAY_FAILURES,
    end_publish_spans,
    inject_into,
    start_publish_span,
)
from services.kit.jobs import PeriodicJob
from services.kit.time import as_utc, utcnow
from services.kit.uow import EventsRecorded, UnitOfWork

log = structlog.get_logger("cerebrum.outbox")


def define_outbox(metadata: MetaData) -> Table:
    """Declares a service's ``outbox`` table in its own metadata."""
    table = Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True)),
    )
    # Only unsent rows are ever scanned by the relay: a partial index keeps that scan small.
    Index(
        "ix_outbox_unpublished",
        table.c.created_at,
        postgresql_where=table.c.published_at.is_(None),
        sqlite_where=table.c.published_at.is_(None),
    )
    return table


def define_inbox(metadata: MetaData) -> Table:
    """Declares a service's ``inbox`` table: the ids of events it has handled."""
    return Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
    )


async def record_event(session: AsyncSession, outbox: Table, event: Payload, *, source: str) -> uuid.UUID:
    """Writes an event into the given outbox table in the session's unit of work.

    For the kit's own probes and benches, which keep an outbox of their own; a service records
    with ``UnitOfWork.of(db).record(event)``.
    """
    return await UnitOfWork.of(session).record_in(outbox, event, source=source)


FIRST_RETRY_SECONDS = 0.5
"""The back-off doubles from here at each failed round: the relay tries again after 1, 2, 4, then every 5 s."""


class OutboxRelay:
    """Publishes a service's outbox rows in order, in batches; marks them sent once the bus has them."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        outbox: Table,
        bus: EventBus,
        batch_size: int = 500,
        poll_interval: float = 2.0,
        retention: timedelta = timedelta(days=1),
        stop_timeout: float = 10.0,
    ) -> None:
        self.service = service
        self.db = db
        self.outbox = outbox
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self._wake = asyncio.Event()
        self._backoff = FIRST_RETRY_SECONDS
        self._last_cleanup = 0.0
        self.job = PeriodicJob(
            f"outbox-relay-{service}",
            self._relay_round,
            interval=poll_interval,
            wake=self._wake,
            stop_timeout=stop_timeout,
        )
        db.when_committed(EventsRecorded, self._events_committed)
        oldest_unsent = (
            select(outbox.c.id)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.created_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._claim = (
            update(outbox)
            .where(outbox.c.id.in_(oldest_unsent.scalar_subquery()))
            .values(published_at=bindparam("sent_at"))
            .returning(outbox.c.id, outbox.c.event_type, outbox.c.payload, outbox.c.headers, outbox.c.created_at)
        )

    def _events_committed(self, _: EventsRecorded) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()

    async def _relay_round(self) -> float:
        """One round of the relay's job; returns how soon to look again (backing off while failing)."""
        loop = asyncio.get_running_loop()
        try:
            sent = await self.relay_once()
            self._backoff = FIRST_RETRY_SECONDS
            if loop.time() - self._last_cleanup > 60:
                await self.forget_published()
                self._last_cleanup = loop.time()
        except BusUnavailable as exc:
            RELAY_FAILURES.labels(self.service).inc()
            log.warning("outbox_relay_waiting_for_broker", service=self.service, reason=str(exc)[:200])
            await self.update_backlog()
            self._backoff = min(self._backoff * 2, 5.0)
            return self._backoff
        except Exception as exc:  # a database outage: keep the relay alive and try again
            RELAY_FAILURES.labels(self.service).inc()
            log.warning("outbox_relay_error", service=self.service, error=type(exc).__name__)
            self._backoff = min(self._backoff * 2, 5.0)
            return self._backoff
        if sent >= self.batch_size:
            return 0  # a full batch: more are waiting
        # Events committed while this round ran have woken the next one already (the job clears
        # its wake-up before each round): a second look at once would cost a transaction per round.
        return self.poll_interval

    async def relay_once(self) -> int:
        """Publishes the oldest unsent batch; returns how many went out."""
        async with self.db.session_scope() as session:
            # One statement claims the batch: rows are marked sent and locked until the commit,
            # which happens only once the broker has them (a failed publish rolls the mark back).
            rows = sorted(
                (await session.execute(self._claim, {"sent_at": utcnow()})).all(), key=lambda row: row.created_at
            )
            if not rows:
                OUTBOX_AGE.labels(self.service).set(0)
                OUTBOX_PENDING.labels(self.service).set(0)
                return 0
            OUTBOX_AGE.labels(self.service).set((utcnow() - as_utc(rows[0].created_at)).total_seconds())
            messages, spans = self._messages(rows)
            try:
                await self.bus.publish(messages)
            except BaseException as exc:
                end_publish_spans(spans, exc)
                raise
            end_publish_spans(spans)
        for message in messages:
            PUBLISHED.labels(self.service, message.type).inc()
        return len(messages)

    def _messages(self, rows: list[Any]) -> tuple[list[OutgoingMessage], list[Span]]:
        # One publish span per event, a child of the request that recorded it, ended when the
        # broker has answered for the batch: a failed attempt leaves an ERROR span, the attempt
        # that succeeds a successful one, and the consumer's span is a child of that one (its
        # traceparent is what the message carries). A single span for the batch would sit in a
        # trace of its own, outside every request it serves.
        messages, spans = [], []
        for row in rows:
            payload = row.payload
            body = encode(
                event_id=row.id,
                type_=row.event_type,
                source=payload.get("source", self.service),
                occurred_at=as_utc(row.created_at),
                data=payload.get("data", {}),
            )
            span = start_publish_span(
                service=self.service,
                event_type=row.event_type,
                message_id=str(row.id),
                recorded_in=row.headers or {},
                batch_size=len(rows),
            )
            headers = inject_into({"x-source": self.service}, set_span_in_context(span))
            messages.append(OutgoingMessage(id=row.id, type=row.event_type, body=body, headers=headers))
            spans.append(span)
        return messages, spans

    async def update_backlog(self) -> None:
        """Reads how many events wait and how old the oldest is (for the backlog alerts)."""
        try:
            async with self.db.session_scope() as session:
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(self.outbox.c.created_at)).where(
                            self.outbox.c.published_at.is_(None)
                        )
                    )
                ).one()
        except Exception:  # the database may be the thing that is down
            return
        OUTBOX_PENDING.labels(self.service).set(count)
        OUTBOX_AGE.labels(self.service).set((utcnow() - as_utc(oldest)).total_seconds() if oldest else 0)

    async def forget_published(self) -> None:
        """Deletes rows published longer ago than the retention (kept a while for reconciliation)."""
        async with self.db.session_scope() as session:
            await session.execute(delete(self.outbox).where(self.outbox.c.published_at < utcnow() - self.retention))
