"""The dispatcher: sends queued messages in batches, per channel, within each provider's rate limit.

Rows are locked with ``FOR UPDATE SKIP LOCKED``, so replicas share the queue without sending a
message twice; a message is marked in the same transaction that held its lock. A failed send
waits ``backoff * 2**(attempt-1)`` (capped, with a little jitter) and is marked failed after the
last attempt. A rate-limited message stays queued, first in line for the next round.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession

from services.communication import repository
from services.communication.delivery import MessageQueued, record_step
from services.communication.models import Message
from services.communication.preferences import channel_enabled, quiet_until
from services.communication.providers import Envelope, Provider, ProviderError, Receipt
from services.communication.settings import CommunicationSettings
from services.communication.telemetry import QUEUE_DEPTH, SEND_SECONDS, scrub, send_span
from services.kit.db import Database
from services.kit.jobs import PeriodicJob
from services.kit.ratelimit import RateLimiter
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.communication.dispatcher")


class Dispatcher:
    """Sends what is queued; ``dispatch_once`` is one round, ``start`` runs rounds until ``stop``."""

    def __init__(
        self,
        *,
        db: Database,
        providers: dict[str, Provider],
        limiter: RateLimiter,
        settings: CommunicationSettings,
    ) -> None:
        self.db = db
        self.providers = providers
        self.limiter = limiter
        self.settings = settings
        self._wake = asyncio.Event()
        self._queued: set[str] = set()
        self._looked_at = float("-inf")
        self.job = PeriodicJob(
            "communication-dispatcher",
            self._round,
            interval=settings.dispatcher_interval_seconds,
            wake=self._wake,
            stop_timeout=settings.job_stop_timeout_seconds,
        )
        db.when_committed(MessageQueued, self._message_queued)

    def _message_queued(self, fact: MessageQueued) -> None:
        self._queued.add(fact.channel)
        self._wake.set()

    async def dispatch_once(self, *, now: datetime | None = None) -> int:
        """Sends the messages due now on every channel; returns how many it settled or rescheduled."""
        handled, _ = await self._dispatch_round(now or utcnow(), only=None)
        return handled

    async def _dispatch_round(self, now: datetime, *, only: set[str] | None) -> tuple[int, bool]:
        """One round on the channels ``only`` names (None: every channel with something due).

        Also tells whether a channel had more due than one batch takes.
        """
        if only is None:
            # One query says which channels have anything due (and sets the queue gauge).
            async with self.db.session_scope() as db:
                queue = await repository.queue_by_channel(db=db, now=now)
            self._set_depth({channel: queued for channel, (queued, _) in queue.items()})
            only = {channel for channel, (_, due) in queue.items() if due}
        channels = [channel for channel in self.providers if channel in only]
        handled, more, depth = 0, False, None
        for n, channel in enumerate(channels, start=1):
            async with self.db.session_scope() as db:
                settled = await self._dispatch(db, channel, self.providers[channel], now)
                if handled + settled and n == len(channels):
                    # What the round sent has left the queue: counted in the last channel's
                    # transaction, not in one of its own.
                    await db.flush()
                    depth = await repository.queue_depth(db=db)
            handled += settled
            more = more or settled >= self.settings.dispatcher_batch_size
        if depth is not None:
            self._set_depth(depth)
        return handled, more

    async def _dispatch(self, db: AsyncSession, channel: str, provider: Provider, now: datetime) -> int:
        due = await repository.due_messages(db=db, channel=channel, now=now, limit=self.settings.dispatcher_batch_size)
        if not due:
            return 0
        prefs = await repository.preferences_of(db=db, user_ids=[m.user_id for m in due if m.user_id])
        opted_out = await repository.opted_out(
            db=db, channel=channel, addresses=[m.recipient for m in due if m.recipient]
        )
        handled, sendable = 0, []
        for message in due:
            user_prefs = prefs.get(message.user_id) if message.user_id else None
            # Honoured at the last moment: a STOP or a switch-off after queueing still stops the send.
            if not channel_enabled(user_prefs, channel) or message.recipient in opted_out:
                record_step(db, message, "suppressed", detail="opted out before sending", at=now)
                handled += 1
                continue
            resume = quiet_until(user_prefs, channel, now, self.settings.default_timezone)
            if resume is not None:
                message.next_attempt_at = resume
                handled += 1
                continue
            decision = await self.limiter.hit(
                self.settings.provider_rate_limit, "notifications", channel, provider.name
            )
            if not decision.allowed:
                log.info("notification_rate_limited", channel=channel, provider=provider.name)
                break  # this and the rest stay queued, in order, for the next round
            sendable.append(message)
        outcomes = await self._send_all(provider, sendable)
        for message, outcome in zip(sendable, outcomes, strict=True):
            self._settle(db, message, provider, outcome, now)
        return handled + len(sendable)

    async def _send_all(self, provider: Provider, messages: Sequence[Message]) -> list[Receipt | ProviderError]:
        gate = asyncio.Semaphore(self.settings.dispatcher_concurrency)

        async def send(message: Message) -> Receipt | ProviderError:
            envelope = Envelope(message.id, message.channel, message.recipient, message.subject, message.body)
            async with gate:
                with send_span(
                    message_id=str(message.id),
                    channel=message.channel,
                    provider=provider.name,
                    attempt=message.attempts + 1,
                    queued_in=message.trace_headers,
                ) as span:
                    started = time.perf_counter()
                    try:
                        outcome: Receipt | ProviderError = await provider.send(envelope)
                    except ProviderError as exc:
                        outcome = exc
                    except Exception as exc:  # an adapter bug must not lose the message: retry it like an outage
                        outcome = ProviderError(f"{type(exc).__name__} in the {provider.name} adapter")
                    finally:
                        SEND_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
                    if isinstance(outcome, ProviderError) and span.is_recording():
                        span.set_status(Status(StatusCode.ERROR, scrub(str(outcome))[:200]))
                        span.set_attribute("error.type", "retryable" if outcome.retryable else "refused")
                    return outcome

        return list(await asyncio.gather(*(send(m) for m in messages)))

    def _settle(
        self, db: AsyncSession, message: Message, provider: Provider, outcome: Receipt | ProviderError, now: datetime
    ) -> None:
        message.attempts += 1
        message.provider = provider.name
        fields = {"message_id": str(message.id), "channel": message.channel, "attempts": message.attempts}
        if isinstance(outcome, Receipt):
            message.provider_message_id = outcome.provider_message_id
            message.sent_at = now
            message.error = None
            record_step(db, message, "sent", at=now)
            if outcome.delivered:
                message.delivered_at = now
                record_step(db, message, "delivered", at=now)
            log.info("notification_sent", provider=provider.name, **fields)
            return
        error = scrub(str(outcome))[:500]
        message.error = error
        if outcome.retryable and message.attempts < self.settings.max_attempts:
            delay = self.backoff(message.attempts)
            message.next_attempt_at = now + timedelta(seconds=delay)
            record_step(db, message, "retrying", detail=f"attempt {message.attempts}: {error}"[:500], at=now)
            log.warning(
                "notification_retry_scheduled",
                provider=provider.name,
                delay_s=round(delay, 3),
                error=error[:200],
                **fields,
            )
            return
        record_step(db, message, "failed", detail=error, at=now)
        log.warning("notification_failed", provider=provider.name, error=error[:200], **fields)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: doubling, capped, +0-10% jitter."""
        base = min(self.settings.retry_backoff_seconds * 2 ** (attempts - 1), self.settings.retry_backoff_max_seconds)
        return base * (1 + random.random() / 10)

    async def measure_queue(self) -> None:
        """Sets the queue-depth gauge per channel."""
        async with self.db.session_scope() as db:
            depth = await repository.queue_depth(db=db)
        self._set_depth(depth)

    def _set_depth(self, depth: dict[str, int]) -> None:
        for channel in self.providers:
            QUEUE_DEPTH.labels(channel).set(depth.get(channel, 0))

    # The loop ---------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()

    @property
    def _task(self) -> asyncio.Task[None] | None:
        """The loop's task while it runs; None once stopped."""
        return self.job.task

    async def _round(self) -> float | None:
        # Woken by messages queued, the round goes to their channels at once; every interval it
        # also asks which channels have anything due (retries and quiet hours coming due), so
        # that a steady stream of new messages on one channel never holds back another's.
        # A full batch: look again at once, more is due. Otherwise wait for the next message
        # queued (it wakes the loop) or the interval.
        loop = asyncio.get_running_loop()
        queued, self._queued = self._queued, set()
        only: set[str] | None = queued
        if not queued or loop.time() - self._looked_at >= self.settings.dispatcher_interval_seconds:
            only, self._looked_at = None, loop.time()
        _, more = await self._dispatch_round(utcnow(), only=only)
        return 0 if more else None
