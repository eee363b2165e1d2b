"""A service's consumer: handles a batch in one transaction, recording handled ids in its inbox."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
    set_span_in_context,
    use_span,
)
from sqlalchemy import Table, Uuid, bindparam, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import CONTRACTS
from services.kit.db import Database
from services.kit.events.contracts import Event, EventHandler, Handler, InBatches, ReadAhead
from services.kit.events.telemetry import CONSUMED, bounded_event, context_from, tracer, zero_consumer_series
from services.kit.events.topology import queue_name
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.consumer")


class EventConsumer:
    """Runs a service's handlers exactly once per event id, whatever the broker redelivers."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        inbox: Table,
        handlers: Mapping[str, Handler],
        read_ahead: ReadAhead | None = None,
    ) -> None:
        self.service = service
        self.db = db
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.read_ahead = read_ahead
        self.routing_keys = tuple(self.handlers)
        handled = [key for key in self.handlers if "*" not in key and "#" not in key]
        # The names an ``event`` label may take: the contracts' and the service's own handlers'.
        self.known_events = frozenset(CONTRACTS) | frozenset(handled)
        zero_consumer_series(service, handled)
        # PostgreSQL: the batch's ids go in as two arrays, one statement of constant shape (a
        # multi-row VALUES would be compiled afresh for every batch size).
        # (Text, because SQLAlchemy does not cache the compiled form of INSERT … FROM SELECT.)
        self._claim_pg = (
            text(
                f'INSERT INTO "{inbox.name}" (event_id, event_type, handled_at) '
                "SELECT unnest(CAST(:ids AS uuid[])), unnest(CAST(:types AS varchar[])), :now "
                "ON CONFLICT DO NOTHING RETURNING event_id"
            )
            .bindparams(bindparam("now", type_=inbox.c.handled_at.type))
            .columns(event_id=Uuid)
        )

    def event_label(self, event_type: str) -> str:
        """The ``event`` label an event of this type is counted under (bounded: see ``bounded_event``)."""
        return bounded_event(event_type, self.known_events)

    async def handle_batch(self, events: Sequence[Event]) -> list[str | None]:
        """Handles events; returns, per event, None when done (or seen before) or the error."""
        if not events:
            return []
        if len(events) == 1:
            return [await self._handle_alone(events[0])]
        parents = {event.id: context_from(event.headers) for event in events}
        # Events of many requests share this transaction (one inbox claim, one commit): its span
        # cannot be a child of all of them, so it links each event's publish span instead, and
        # the claim and the commit happen inside it. Each handler's own span is still a child
        # of its event's publish span.
        span = tracer.start_span(
            f"{queue_name(self.service)} process",
            context=Context(),
            kind=SpanKind.CONSUMER,
            links=[Link(get_current_span(ctx).get_span_context()) for ctx in parents.values()],
            attributes={
                **self._attributes(),
                "messaging.batch.message_count": len(events),
            },
        )
        try:
            with use_span(span, end_on_exit=True):
                async with self.db.session_scope() as session:
                    outcomes = await self._handle(session, events, parents)
            self._count(outcomes)
            return [None] * len(events)
        except Exception as exc:
            log.warning("event_batch_failed", size=len(events), error=f"{type(exc).__name__}: {exc}"[:300])
        # One event spoiled the batch: find it by handling each in its own transaction.
        return [await self._handle_alone(event) for event in events]

    async def _handle_alone(self, event: Event) -> str | None:
        # One event, one transaction: its span (a child of the event's publish span) holds the
        # inbox claim, the handler and the commit, all in the trace of the request behind it.
        span = tracer.start_span(
            f"{event.type} process",
            context=context_from(event.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                **self._attributes(),
                "messaging.message.id": str(event.id),
                "cerebrum.event.retries": event.retries,
            },
        )
        bound = structlog.contextvars.bind_contextvars(service=self.service, event_id=str(event.id))
        try:
            with use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
                try:
                    async with self.db.session_scope() as session:
                        outcomes = await self._handle(session, [event], None)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                span.set_attribute("cerebrum.event.outcome", outcomes[0][1])
            self._count(outcomes)
            return None
        except Exception as exc:
            CONSUMED.labels(self.service, self.event_label(event.type), "failed").inc()
            log.warning(
                "event_handler_failed",
                event_type=event.type,
                event_id=str(event.id),
                retries=event.retries,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return f"{type(exc).__name__}: {exc}"[:500]
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def _claim(self, session: AsyncSession, events: Sequence[Event]) -> set[str]:
        """Inserts the events' ids into the inbox; returns the ids not handled before."""
        now = utcnow()
        unique = list({e.id: e for e in events}.values())
        if session.bind.dialect.name == "postgresql":
            claimed = await session.execute(
                self._claim_pg, {"ids": [e.id for e in unique], "types": [e.type for e in unique], "now": now}
            )
        else:
            rows = [{"event_id": e.id, "event_type": e.type, "handled_at": now} for e in unique]
            statement = sqlite.insert(self.inbox).values(rows).on_conflict_do_nothing().returning(self.inbox.c.event_id)
            claimed = await session.execute(statement)
        return {str(event_id) for event_id in claimed.scalars()}

    def _count(self, outcomes: list[tuple[str, str]]) -> None:
        for event_type, outcome in outcomes:
            CONSUMED.labels(self.service, self.event_label(event_type), outcome).inc()

    def _attributes(self) -> dict[str, str]:
        return {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue_name(self.service),
            "cerebrum.service": self.service,
        }

    async def _handle(
        self, session: AsyncSession, events: Sequence[Event], parents: Mapping[uuid.UUID, Context] | None
    ) -> list[tuple[str, str]]:
        """Claims the events and runs their handlers; ``parents`` is None for one event in its own span."""
        fresh = await self._claim(session, events)
        if self.read_ahead is not None and len(fresh) > 1:
            await self.read_ahead([e for e in events if str(e.id) in fresh and e.type in self.handlers], session)
        outcomes = []
        run: list[Event] = []  # consecutive new events of one type whose handler takes them together
        for event in events:
            if str(event.id) not in fresh:
                outcomes.append((event.type, "duplicate"))
                continue
            fresh.discard(str(event.id))  # the same id twice in one batch is handled once
            handler = self.handlers.get(event.type)
            outcomes.append((event.type, "ignored" if handler is None else "handled"))
            if run and run[0].type != event.type:
                await self._run_batch(session, run, parents)
                run = []
            if isinstance(handler, InBatches):
                run.append(event)
            elif handler is not None:
                if parents is None:
                    await handler(event, session)  # already inside the event's own span
                else:
                    await self._run_handler(session, event, handler, parents[event.id])
        if run:
            await self._run_batch(session, run, parents)
        return outcomes

    async def _run_batch(
        self, session: AsyncSession, events: list[Event], parents: Mapping[uuid.UUID, Context] | None
    ) -> None:
        handler = self.handlers[events[0].type]
        assert isinstance(handler, InBatches)
        if parents is None:
            await handler.handle(events, session)  # already inside the event's own span
            return
        # One span for the run, linked to each event's publish span (messaging conventions for batches).
        links = [Link(get_current_span(parents[e.id]).get_span_context()) for e in events]
        span = tracer.start_span(
            f"{events[0].type} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={**self._attributes(), "messaging.batch.message_count": len(events)},
        )
        await self._within(span, lambda: handler.handle(events, session))

    async def _run_handler(self, session: AsyncSession, event: Event, handler: EventHandler, parent: Context) -> None:
        span = tracer.start_span(
            f"{event.type} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                **self._attributes(),
                "messaging.message.id": str(event.id),
                "cerebrum.event.retries": event.retries,
            },
        )
        bound = structlog.contextvars.bind_contextvars(event_id=str(event.id))
        try:
            await self._within(span, lambda: handler(event, session))
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def _within(self, span: Span, call: Callable[[], Awaitable[None]]) -> None:
        token = otel_context.attach(set_span_in_context(span))
        bound = structlog.contextvars.bind_contextvars(service=self.service)
        try:
            await call()
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(token)
            span.end()
