"""The saga's local changes: each made in the caller's transaction, with its event and its step log.

The saga (its own transaction per step) and the payment handlers (the consumer's transaction) both
change a saga through these, on a row they have locked.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import EnrollmentCancelled, EnrollmentConfirmed, EnrollmentCreated
from services.enrollments import repository
from services.enrollments.models import ACTIVE_STATUSES, Enrollment, EnrollmentSagaRecord
from services.enrollments.replies import CourseReply, OrderReply
from services.enrollments.telemetry import count_enrollment, count_step
from services.kit.time import utcnow
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.enrollments.saga")
Change = Callable[[AsyncSession, EnrollmentSagaRecord], Awaitable[None]]

# Running states going forward, and the step each one runs.
FORWARD_STEPS = {
    "validating_user": "validate_user",
    "checking_course": "check_course",
    "reserving_seat": "reserve_seat",
    "creating_enrollment": "create_enrollment",
    "creating_order": "create_order",
}
AWAITING_PAYMENT = "awaiting_payment"
COMPENSATING = "compensating"
RUNNING_STATES = (*FORWARD_STEPS, COMPENSATING)
TERMINAL_STATES = ("confirmed", "compensated", "cancelled", "payment_after_cancel")


async def log_step(
    db: AsyncSession, saga: EnrollmentSagaRecord, step: str, outcome: str, detail: str | None = None
) -> None:
    """Appends to the saga's step log and counts the step."""
    await repository.add_step(db=db, saga_id=saga.id, step=step, outcome=outcome, detail=detail)
    count_step(step, outcome)


def move(saga: EnrollmentSagaRecord, state: str, step: str | None = None) -> None:
    """Puts the saga in a state, at that state's step unless another is named."""
    saga.state = state
    saga.step = step or FORWARD_STEPS.get(state, "await_payment" if state == AWAITING_PAYMENT else saga.step)
    saga.updated_at = utcnow()


def begin_compensation(saga: EnrollmentSagaRecord, reason: str, *, seat_held: bool = True) -> None:
    """Turns the saga round: its compensations run next, the order's first."""
    saga.cancel_reason = reason[:64]
    if not seat_held:
        saga.reservation_id = None
    move(saga, COMPENSATING, "cancel_order")


def finish_compensation(saga: EnrollmentSagaRecord) -> str:
    """Ends a compensation in its terminal state and counts it; returns the state."""
    if saga.paid_after_cancel:
        state = "payment_after_cancel"
    elif saga.payment_id is not None:
        state = "cancelled"  # it had been confirmed (paid) before it was cancelled
    else:
        state = "compensated"
    move(saga, state, "done")
    count_enrollment(state)
    return state


async def create_pending_enrollment(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    """Creates the enrolment as pending payment; the unique index refuses a second active one.

    The row is written at commit with the saga's own changes (one flush for the steps, the saga and
    the enrolment), so a second active enrolment is refused by the commit: the caller's ``_change``
    raises the IntegrityError, as an early flush here used to.
    """
    now = utcnow()
    enrollment = Enrollment(
        id=saga.enrollment_id,
        user_id=saga.user_id,
        course_id=saga.course_id,
        saga_id=saga.id,
        course_title=saga.course_title or "",
        status="pending_payment",
        amount_paise=saga.amount_paise or 0,
        currency=saga.currency,
        # The lessons the saga read: the first progress update need not ask courses for them.
        lesson_ids=saga.lesson_ids,
        order_id=saga.order_id,  # an order asked for alongside the seat (order_kept), else None
        created_at=now,
        updated_at=now,
    )
    db.add(enrollment)
    payload = EnrollmentCreated(
        enrollment_id=enrollment.id,
        user_id=saga.user_id,
        course_id=saga.course_id,
        saga_id=saga.id,
        amount_paise=enrollment.amount_paise,
    )
    await UnitOfWork.of(db).record(payload)
    await log_step(db, saga, "create_enrollment", "ok")
    move(saga, "creating_order")
    count_enrollment("created")


def order_kept(order: OrderReply) -> Change:
    """Keeps the payment order on the saga, whose compensation then cancels it; the state stays.

    Before ``create_pending_enrollment`` in one transaction, the enrolment is created with it.
    """

    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        saga.order_id = order.order_id
        saga.payment_order = order.model_dump(mode="json")

    return change


async def awaiting_payment(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    """The order is kept on the saga and its enrolment: the saga now waits for the payment."""
    await log_step(db, saga, "create_order", "ok", f"order {saga.order_id}")
    move(saga, AWAITING_PAYMENT)


def ordered(order: OrderReply) -> Change:
    """Keeps the payment order on the saga and its enrolment, created before; the saga waits for the payment."""

    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        await repository.set_order(db=db, enrollment_id=saga.enrollment_id, order_id=order.order_id)
        await order_kept(order)(db, saga)
        await awaiting_payment(db, saga)

    return change


async def confirm_enrollment(db: AsyncSession, saga: EnrollmentSagaRecord, payment_id: uuid.UUID) -> bool:
    """Confirms a pending enrolment once it is paid; False when it is no longer pending."""
    enrollment = await repository.get_enrollment(db=db, enrollment_id=saga.enrollment_id, lock=True)
    if enrollment is None or enrollment.status != "pending_payment":
        return False
    now = utcnow()
    enrollment.status, enrollment.confirmed_at, enrollment.updated_at = "confirmed", now, now
    saga.payment_id = payment_id
    saga.cancel_reason = None  # a cancellation that had not reached the order yet gives way to the payment
    payload = EnrollmentConfirmed(
        enrollment_id=enrollment.id,
        user_id=enrollment.user_id,
        course_id=enrollment.course_id,
        course_title=enrollment.course_title,
        amount_paise=enrollment.amount_paise,
        confirmed_at=now,
    )
    await UnitOfWork.of(db).record(payload)
    await log_step(db, saga, "confirm", "ok", f"payment {payment_id}")
    move(saga, "confirmed", "confirm")
    count_enrollment("confirmed")
    return True


async def cancel_enrollment(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    """Cancels the saga's enrolment if it is active; the seat's release runs next."""
    enrollment = await repository.get_enrollment(db=db, enrollment_id=saga.enrollment_id, lock=True)
    if enrollment is not None and enrollment.status in ACTIVE_STATUSES:
        now = utcnow()
        enrollment.status, enrollment.cancelled_at, enrollment.updated_at = "cancelled", now, now
        enrollment.cancel_reason = saga.cancel_reason
        payload = EnrollmentCancelled(
            enrollment_id=enrollment.id,
            user_id=enrollment.user_id,
            course_id=enrollment.course_id,
            reason=saga.cancel_reason or "cancelled",
        )
        await UnitOfWork.of(db).record(payload)
        await log_step(db, saga, "cancel_enrollment", "ok", saga.cancel_reason)
    move(saga, COMPENSATING, "release_seat")


# Changes the saga applies, each on its locked row -------------------------------------------------
def in_turn(*changes: Change) -> Change:
    """The changes one after another, in the caller's one transaction."""

    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        for each in changes:
            await each(db, saga)

    return change


def advance(step: str, state: str) -> Change:
    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        await log_step(db, saga, step, "ok")
        move(saga, state)

    return change


def course_checked(course: CourseReply) -> Change:
    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        saga.course_title = course.title[:200]
        saga.amount_paise = course.price_paise
        saga.currency = course.currency[:3]
        saga.lesson_ids = course.lesson_ids()
        saga.reservation_id = saga.id  # from here on a seat may be held under this id
        await log_step(db, saga, "check_course", "ok")
        move(saga, "reserving_seat")

    return change


def start_compensating(reason: str, *, seat_held: bool = True) -> Change:
    async def change(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
        await log_step(db, saga, "compensate", "started", reason)
        begin_compensation(saga, reason, seat_held=seat_held)

    return change


async def order_cancelled(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    if saga.order_id is not None:
        await log_step(db, saga, "cancel_order", "ok", f"order {saga.order_id}")
    move(saga, COMPENSATING, "cancel_enrollment")


async def revert_paid(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    await log_step(db, saga, "cancel_order", "refused", "the order is paid already")
    saga.cancel_reason = None
    move(saga, AWAITING_PAYMENT)


async def seat_released(db: AsyncSession, saga: EnrollmentSagaRecord) -> None:
    if saga.reservation_id is not None:
        await log_step(db, saga, "release_seat", "ok")
    state = finish_compensation(saga)
    log.info("saga_compensated", saga_id=str(saga.id), state=state, reason=saga.cancel_reason)
