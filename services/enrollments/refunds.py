"""Giving a paid place up: the money comes back first, then the enrolment is cancelled and its seat freed.

The refund is asked of payments before anything changes here. Payments owns the refund window:
outside it, it refuses and the cancellation stops with the enrolment, its seat and its saga as
they were. When payments is unreachable the request answers 503 with nothing changed, and the
student's retry asks again (payments refunds an order once, and answers a repeat with that refund).

Once the refund is made, ``payment.refunded`` announces it. Should the cancellation here be cut
short after the refund (a crash, a lost answer), or an admin refund the order at payments
directly, that event cancels the enrolment and frees its seat: no refunded place stays taken.
"""

from __future__ import annotations

import structlog
from opentelemetry import context as otel_context
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentRefunded
from services.enrollments import repository
from services.enrollments.handlers import CompensationDecided
from services.enrollments.models import EnrollmentSagaRecord
from services.enrollments.replies import RefundReply
from services.enrollments.telemetry import tracer
from services.enrollments.transitions import Change, cancel_enrollment, log_step
from services.kit.events import Event
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.enrollments.refunds")


def needs_refund(saga: EnrollmentSagaRecord) -> bool:
    """Whether cancelling this confirmed enrolment gives money back (a free place has none to give)."""
    return saga.order_id is not None and saga.payment_id is not None and (saga.amount_paise or 0) > 0


def refunded_and_cancelled(reason: str, refund: RefundReply | None) -> Change:
    """Cancels a confirmed enrolment whose payment was refunded (or that had nothing to refund)."""

    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        if refund is not None:
            await log_step(db, saga, "refund_payment", "ok", f"refund {refund.refund_id} ({refund.credit_note.number})")
            _mirror_refund(saga, refund.refund_id, refund.credit_note.number)
        saga.cancel_reason = reason
        await cancel_enrollment(db, saga)

    return change


def _mirror_refund(saga: EnrollmentSagaRecord, refund_id: object, credit_note_number: str) -> None:
    if saga.payment_order is not None:
        saga.payment_order = {
            **saga.payment_order,
            "status": "refunded",
            "refund_id": str(refund_id),
            "credit_note_number": credit_note_number,
        }


async def on_payment_refunded(event: Event, db: AsyncSession) -> None:
    """Cancels the enrolment a refund paid back, if it is still confirmed, and frees its seat."""
    refund = PaymentRefunded.model_validate(event.data)
    saga = await repository.saga_of_payment(db=db, enrollment_id=refund.enrollment_id, order_id=refund.order_id)
    if saga is None or saga.order_id != refund.order_id:
        log.info("refund_for_no_enrollment", order_id=str(refund.order_id), event_id=str(event.id))
        return
    _mirror_refund(saga, refund.refund_id, refund.credit_note_number)
    if saga.state != "confirmed":
        return  # cancelled already, by the request that asked for the refund
    with tracer.start_as_current_span("saga.cancel_refunded", attributes={"cerebrum.saga.id": str(saga.id)}):
        await log_step(db, saga, "refund_payment", "ok", f"refund {refund.refund_id} ({refund.credit_note_number})")
        saga.cancel_reason = "refunded"
        await cancel_enrollment(db, saga)
    log.info("refunded_enrollment_cancelled", saga_id=str(saga.id), enrollment_id=str(saga.enrollment_id))
    UnitOfWork.of(db).announce(CompensationDecided(saga.id, otel_context.get_current()))
