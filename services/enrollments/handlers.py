"""The payment events that move the enrolment saga on; each runs once per event id, in its own transaction.

A handler only changes local state. The seat's release after a failed payment is a call to the
courses service, which must not run inside the consumer's transaction: the handler records the
decision (saga compensating) and announces it to its unit of work, and the saga runner
carries the compensation on once that transaction has committed (``recovery.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import PaymentFailed, PaymentSucceeded
from services.enrollments import repository
from services.enrollments.telemetry import count_enrollment, tracer
from services.enrollments.transitions import (
    AWAITING_PAYMENT,
    COMPENSATING,
    begin_compensation,
    cancel_enrollment,
    confirm_enrollment,
    log_step,
    move,
)
from services.kit.events import Event
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.enrollments.handlers")


@dataclass(frozen=True)
class CompensationDecided:
    """A payment handler decided to compensate this saga; recovery carries it on once that commits."""

    saga_id: uuid.UUID
    context: Context
    """The handler's trace context, so that the compensation stays in its trace."""


async def on_payment_succeeded(event: Event, db: AsyncSession) -> None:
    """Confirms the paid enrolment; a payment for an enrolment already compensated is recorded."""
    payment = PaymentSucceeded.model_validate(event.data)
    saga = await repository.saga_of_payment(db=db, enrollment_id=payment.enrollment_id, order_id=payment.order_id)
    if saga is None:
        log.info("payment_for_no_enrollment", order_id=str(payment.order_id), event_id=str(event.id))
        return
    if saga.order_id is not None and saga.order_id != payment.order_id:
        # Only the order the saga created pays for its enrolment.
        log.warning("payment_for_another_order", saga_id=str(saga.id), order_id=str(payment.order_id))
        return
    if saga.amount_paise is not None and payment.amount_paise != saga.amount_paise:
        log.warning("payment_amount_differs", saga_id=str(saga.id), paid=payment.amount_paise, due=saga.amount_paise)
        return
    still_payable = saga.state in ("creating_order", AWAITING_PAYMENT) or (
        saga.state == COMPENSATING and saga.step == "cancel_order"  # the order was not cancelled yet
    )
    if still_payable:
        with tracer.start_as_current_span("saga.confirm", attributes={"cerebrum.saga.id": str(saga.id)}):
            confirmed = await confirm_enrollment(db, saga, payment.payment_id)
        if confirmed:
            log.info("enrollment_confirmed", saga_id=str(saga.id), enrollment_id=str(saga.enrollment_id))
            return
    if saga.payment_id == payment.payment_id or saga.state == "confirmed":
        log.info("payment_already_applied", saga_id=str(saga.id), payment_id=str(payment.payment_id))
        return
    # Paid after the saga gave the seat back: refunds belong to payments, so keep the fact and warn.
    log.warning(
        "payment_after_cancel",
        saga_id=str(saga.id),
        enrollment_id=str(saga.enrollment_id),
        payment_id=str(payment.payment_id),
        state=saga.state,
    )
    saga.payment_id = payment.payment_id
    saga.paid_after_cancel = True
    await log_step(db, saga, "payment_after_cancel", "recorded", f"payment {payment.payment_id}")
    if saga.state != COMPENSATING:  # a compensation still running ends in this state itself
        move(saga, "payment_after_cancel", "done")
        count_enrollment("payment_after_cancel")


async def on_payment_failed(event: Event, db: AsyncSession) -> None:
    """Compensates an enrolment whose payment failed or whose order expired."""
    failure = PaymentFailed.model_validate(event.data)
    saga = await repository.saga_of_payment(db=db, enrollment_id=failure.enrollment_id, order_id=failure.order_id)
    if saga is None:
        log.info("payment_failure_for_no_enrollment", order_id=str(failure.order_id), event_id=str(event.id))
        return
    if saga.state not in ("creating_order", AWAITING_PAYMENT):
        log.info("payment_failure_ignored", saga_id=str(saga.id), state=saga.state, reason=failure.reason)
        return
    if saga.order_id is not None and saga.order_id != failure.order_id:
        log.warning("payment_failure_for_another_order", saga_id=str(saga.id), order_id=str(failure.order_id))
        return
    await log_step(db, saga, "await_payment", "failed", failure.reason)
    begin_compensation(saga, f"payment_{failure.reason}")
    # The order is dead already (failed or expired): nothing to cancel at payments.
    move(saga, COMPENSATING, "cancel_enrollment")
    with tracer.start_as_current_span("saga.cancel_enrollment", attributes={"cerebrum.saga.id": str(saga.id)}):
        await cancel_enrollment(db, saga)
    # With this handler's trace context: the compensation carries on in the same trace.
    UnitOfWork.of(db).announce(CompensationDecided(saga.id, otel_context.get_current()))

