"""The channel boundary: one interface, a real adapter per channel (``adapters.py``) and offline ones."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Envelope:
    """A rendered message on its way to a provider."""

    message_id: uuid.UUID
    channel: str
    to: str | None
    subject: str | None
    body: str


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    delivered: bool = False  # the channel confirms delivery at once (in-app)


class ProviderError(Exception):
    """A provider did not take a message; ``retryable`` unless it will never take it (a bad address)."""

    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(detail)
        self.retryable = retryable


class Provider(Protocol):
    name: str

    async def send(self, envelope: Envelope) -> Receipt: ...

    async def close(self) -> None: ...


class SandboxProvider:
    """Records messages instead of sending them, and fails when told to (offline runs, tests, drills)."""

    name = "sandbox"

    def __init__(self, *, failure_rate: float = 0.0, latency_seconds: float = 0.0) -> None:
        self.failure_rate = failure_rate
        self.latency_seconds = latency_seconds
        self.sent: list[Envelope] = []
        self.calls = 0
        self.fail_next = 0  # the next N sends fail
        self.fail_always = False
        self.permanent = False  # failures say the address will never work

    async def send(self, envelope: Envelope) -> Receipt:
        self.calls += 1
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        if self.fail_always or self.fail_next > 0 or random.random() < self.failure_rate:
            self.fail_next = max(self.fail_next - 1, 0)
            raise ProviderError("sandbox provider refused the message", retryable=not self.permanent)
        self.sent.append(envelope)
        return Receipt(provider_message_id=f"sandbox-{envelope.message_id.hex}")

    async def close(self) -> None:
        return None


class InAppProvider:
    """In-app notifications are the stored message itself: delivered once the student can read it."""

    name = "in_app"

    async def send(self, envelope: Envelope) -> Receipt:
        return Receipt(provider_message_id=f"in-app-{envelope.message_id.hex}", delivered=True)

    async def close(self) -> None:
        return None
