"""Keeps sagas moving without a request: after a crash, and after a payment handler's decision.

Every few seconds the loop claims sagas left in a running state for longer than a step can take
(the process driving them died) and drives each on: forward while its steps can be repeated
safely, or through its compensations. A payment handler that decided to compensate announces
it in its unit of work; once that transaction commits, the compensation is carried on at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import structlog
from opentelemetry.context import Context

from services.enrollments import repository
from services.enrollments.handlers import CompensationDecided
from services.enrollments.saga import EnrollmentSaga
from services.enrollments.settings import EnrollmentsSettings
from services.enrollments.telemetry import tracer
from services.enrollments.transitions import RUNNING_STATES
from services.kit.db import Database
from services.kit.errors import DomainError
from services.kit.jobs import PeriodicJob
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.enrollments.recovery")


class SagaRecovery:
    """Resumes stuck sagas on a timer, and compensations decided by event handlers right away."""

    def __init__(self, *, saga: EnrollmentSaga, db: Database, settings: EnrollmentsSettings) -> None:
        self.saga = saga
        self.db = db
        self.settings = settings
        self.job = PeriodicJob(
            "enrollments-saga-recovery",
            self._round,
            interval=settings.saga_recovery_interval_seconds,
            stop_timeout=settings.job_stop_timeout_seconds,
        )
        self._running: set[asyncio.Task[Any]] = set()
        db.when_committed(CompensationDecided, self._compensate)

    def _compensate(self, decided: CompensationDecided) -> None:
        saga_id = decided.saga_id
        task = asyncio.get_running_loop().create_task(self._resume(saga_id, decided.context), name=f"saga-{saga_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def start(self) -> None:
        """Starts the recovery loop (the app's startup hook)."""
        await self.job.start()

    async def stop(self) -> None:
        """Stops the loop and lets the compensations under way finish."""
        await self.job.stop()
        await self.idle()

    async def idle(self) -> None:
        """Waits until the compensations started by event handlers have run."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _round(self) -> None:
        await self.recover_once()

    async def recover_once(self) -> int:
        """Claims the sagas stuck in a running state and drives each on; returns how many."""
        older_than = utcnow() - timedelta(seconds=self.settings.saga_stuck_after_seconds)
        async with self.db.session_scope() as db:
            stuck = await repository.claim_stuck_sagas(
                db=db,
                states=RUNNING_STATES,
                older_than=older_than,
                limit=self.settings.saga_recovery_batch,
                skip=self.saga.active,
            )
        for saga_id in stuck:
            await self._resume(saga_id)
        return len(stuck)

    async def _resume(self, saga_id: uuid.UUID, cause: Context | None = None) -> None:
        # A compensation decided by an event handler continues that handler's trace (its span is
        # the parent): the resume is the one consequence of that one event, started the moment its
        # transaction committed, so the failed payment and the seat it gave back read as one story.
        # A stuck saga found by the timer has no cause at hand: its resume starts a trace.
        with tracer.start_as_current_span(
            "saga.resume", context=cause, attributes={"cerebrum.saga.id": str(saga_id)}
        ):
            await self._resume_traced(saga_id)

    async def _resume_traced(self, saga_id: uuid.UUID) -> None:
        try:
            saga = await self.saga.resume(saga_id)
            log.info("saga_recovered", saga_id=str(saga_id), state=saga.state, step=saga.step)
        except DomainError as exc:
            # Refused and compensated, or a dependency still down: the next round tries again.
            log.warning("saga_recovery_stopped", saga_id=str(saga_id), error=exc.detail, status=exc.status)
        except Exception as exc:
            log.error("saga_recovery_failed", saga_id=str(saga_id), error=f"{type(exc).__name__}: {exc}"[:300])
