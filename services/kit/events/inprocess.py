"""The embedded transport: delivery inside one process, with the broker's retry and dead-letter rules.

The relay marks an outbox row sent only after every consumer has handled it or given up on it,
so a crash of the single process loses nothing: unsent rows are relayed again at restart and the
consumers' inboxes drop what they had already handled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from services.kit.events.contracts import Event, EventSink, OutgoingMessage, decode
from services.kit.events.telemetry import DEAD_LETTERED, RETRIED

log = structlog.get_logger("cerebrum.bus")


def topic_matcher(pattern: str) -> re.Pattern[str]:
    """AMQP topic pattern to regex: ``*`` is one word, ``#`` zero or more."""
    words = []
    for word in pattern.split("."):
        words.append(r"[^.]+" if word == "*" else r".*" if word == "#" else re.escape(word))
    return re.compile(r"^" + r"\.".join(words).replace(r"\..*", r"(\..*)?") + r"$")


@dataclass
class DeadLetter:
    service: str
    event: Event
    error: str


@dataclass
class InProcessBus:
    """Delivers each published batch to the matching consumers before returning."""

    max_retries: int = 5
    retry_base_seconds: float = 0.05
    sinks: list[tuple[list[re.Pattern[str]], EventSink]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        events = [decode(m.body, m.headers) for m in messages]
        for patterns, sink in self.sinks:
            wanted = [e for e in events if any(p.match(e.type) for p in patterns)]
            if wanted:
                await self._deliver(sink, wanted)

    async def _deliver(self, sink: EventSink, events: list[Event]) -> None:
        pending = events
        for attempt in range(self.max_retries + 1):
            errors = await sink.handle_batch(pending)
            failed = [(e, err) for e, err in zip(pending, errors, strict=True) if err is not None]
            if not failed:
                return
            if attempt == self.max_retries:
                for event, error in failed:
                    DEAD_LETTERED.labels(sink.service, sink.event_label(event.type)).inc()
                    self.dead_letters.append(DeadLetter(sink.service, event, error))
                    log.error(
                        "event_dead_lettered",
                        consumer=sink.service,
                        event_type=event.type,
                        event_id=str(event.id),
                        error=error,
                    )
                return
            for event, _ in failed:
                RETRIED.labels(sink.service, sink.event_label(event.type)).inc()
            await asyncio.sleep(self.retry_base_seconds * 2**attempt)
            pending = [_retried(e, attempt + 1) for e, _ in failed]

    async def start_consumer(self, sink: EventSink) -> None:
        self.sinks.append(([topic_matcher(k) for k in sink.routing_keys], sink))

    async def stop_consumer(self, sink: EventSink) -> None:
        self.sinks = [(p, s) for p, s in self.sinks if s is not sink]

    async def close(self) -> None:
        return None


def _retried(event: Event, retries: int) -> Event:
    return Event(event.id, event.type, event.source, event.occurred_at, event.data, event.headers, retries)


_embedded: dict[str, InProcessBus] = {}


def embedded_bus(data_dir: str = "data") -> InProcessBus:
    """The in-process bus shared by every service of one embedded platform (one per data folder)."""
    key = str(Path(data_dir).resolve())
    bus = _embedded.get(key)
    if bus is None:
        bus = _embedded[key] = InProcessBus()
    return bus
