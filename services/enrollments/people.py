"""A deleted account's unpaid enrolments are cancelled at once and their seats given back.

Nothing here names a person (enrolments and sagas hold ids, course titles and amounts), so
``user.deleted`` only ends what the person can no longer finish: each enrolment still waiting for
its payment is cancelled in the consumer's transaction, and its saga compensates right after the
commit: the order is cancelled at payments and the seat released at courses (``recovery.py``).
Paid enrolments stay as they are: refunds belong to payments.
"""

from __future__ import annotations

import structlog
from opentelemetry import context as otel_context
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import UserDeleted
from services.enrollments import repository
from services.enrollments.handlers import CompensationDecided
from services.enrollments.telemetry import tracer
from services.enrollments.transitions import (
    AWAITING_PAYMENT,
    COMPENSATING,
    begin_compensation,
    cancel_enrollment,
    log_step,
    move,
)
from services.kit.events import Event
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.enrollments.people")

REASON = "account_deleted"


async def on_user_deleted(event: Event, db: AsyncSession) -> None:
    """Cancels the deleted user's enrolments that wait for a payment; their sagas compensate next."""
    deleted = UserDeleted.model_validate(event.data)
    uow = UnitOfWork.of(db)
    for saga in await repository.sagas_of_user(db=db, user_id=deleted.user_id, states=(AWAITING_PAYMENT,)):
        with tracer.start_as_current_span("saga.cancel_enrollment", attributes={"cerebrum.saga.id": str(saga.id)}):
            await log_step(db, saga, "compensate", "started", REASON)
            begin_compensation(saga, REASON)
            await cancel_enrollment(db, saga)
            # Cancelled here and now; the compensation still runs from its first step, so that
            # the order can no longer be paid before the seat goes back.
            move(saga, COMPENSATING, "cancel_order")
            uow.announce(CompensationDecided(saga.id, otel_context.get_current()))
        log.info(
            "enrollment_cancelled_for_deleted_account", saga_id=str(saga.id), enrollment_id=str(saga.enrollment_id)
        )
