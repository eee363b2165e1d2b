"""The envelope every event travels in, and the bus interface both transports implement."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

EXCHANGE = "cerebrum_events"


class BusUnavailable(Exception):
    """The broker cannot take messages now; the outbox keeps them until it can."""


@dataclass(frozen=True)
class Event:
    """One fact a service announces, as its consumers receive it."""

    id: uuid.UUID
    type: str
    source: str
    occurred_at: datetime
    data: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    retries: int = 0


@dataclass(frozen=True)
class OutgoingMessage:
    """An outbox row on its way to the broker."""

    id: uuid.UUID
    type: str
    body: bytes
    headers: dict[str, str]


def encode(*, event_id: uuid.UUID, type_: str, source: str, occurred_at: datetime, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"id": str(event_id), "type": type_, "source": source, "occurred_at": occurred_at.isoformat(), "data": data}
    )


def decode(body: bytes, headers: dict[str, Any] | None, retries: int = 0) -> Event:
    """Reads an envelope; raises ValueError when it is not one."""
    try:
        raw = orjson.loads(body)
        return Event(
            id=uuid.UUID(raw["id"]),
            type=str(raw["type"]),
            source=str(raw.get("source", "")),
            occurred_at=datetime.fromisoformat(raw["occurred_at"]),
            data=dict(raw.get("data") or {}),
            headers={k: str(v) for k, v in (headers or {}).items() if isinstance(v, str | bytes)},
            retries=retries,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an event envelope: {exc}") from exc


class EventSink(Protocol):
    """What a transport hands received events to (the service's consumer)."""

    service: str
    routing_keys: tuple[str, ...]

    async def handle_batch(self, events: Sequence[Event]) -> list[str | None]:
        """Handles events; returns, per event, None when done or the error that kept it from being done."""
        ...

    def event_label(self, event_type: str) -> str:
        """The ``event`` label to count an event of this type under (a bounded set of names)."""
        ...


class EventBus(Protocol):
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None: ...

    async def start_consumer(self, sink: EventSink) -> None: ...

    async def close(self) -> None: ...


EventHandler = Callable[[Event, Any], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event], Any], Awaitable[None]]


@dataclass(frozen=True)
class InBatches:
    """A handler that takes consecutive new events of its type together, in the consumer's transaction.

    For effects that are one row per event: one statement for the whole run instead of one each.
    """

    handle: BatchHandler


def in_batches(handler: BatchHandler) -> InBatches:
    return InBatches(handler)


Handler = EventHandler | InBatches

ReadAhead = Callable[[Sequence[Event], Any], Awaitable[None]]
"""Called once per consumer transaction with its new events, before any handler runs, in its session:
reads what the handlers will look up one event at a time in one query for all of them (into the
session's identity map). The handlers still run one by one, in order."""
