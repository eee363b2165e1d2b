"""The enrolment rules: enrol through the saga, read enrolments and their saga, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollments import repository
from services.enrollments.errors import EnrollmentNotFound, SagaBusy
from services.enrollments.models import Enrollment, EnrollmentSagaRecord
from services.enrollments.recovery import SagaRecovery
from services.enrollments.saga import EnrollmentSaga
from services.enrollments.schemas import (
    EnrollmentList,
    EnrollmentOut,
    EnrollmentStarted,
    EnrollmentStatus,
    EnrollRequest,
    SagaOut,
    SagaStepOut,
)
from services.enrollments.settings import EnrollmentsSettings
from services.enrollments.transitions import AWAITING_PAYMENT, FORWARD_STEPS
from services.enrollments.upstreams import Upstreams
from services.kit.auth import Identity
from services.kit.time import as_utc


@dataclass(frozen=True)
class EnrollmentsContext:
    """What the enrolment rules need besides the request's session."""

    settings: EnrollmentsSettings
    upstreams: Upstreams
    saga: EnrollmentSaga
    recovery: SagaRecovery


def percent(done: Collection[str], lesson_ids: Collection[str] | None) -> float:
    """The share of the course's lessons completed, in percent."""
    if not lesson_ids:
        return 0.0
    return round(100 * len(set(done) & set(lesson_ids)) / len(lesson_ids), 2)


def enrollment_out(
    enrollment: Enrollment, *, done: Collection[str], saga: EnrollmentSagaRecord | None = None
) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id,
        user_id=enrollment.user_id,
        course_id=enrollment.course_id,
        course_title=enrollment.course_title,
        status=enrollment.status,
        amount_paise=enrollment.amount_paise,
        currency=enrollment.currency,
        order_id=enrollment.order_id,
        progress_percent=percent(done, enrollment.lesson_ids),
        saga_state=saga.state if saga is not None else None,
        created_at=as_utc(enrollment.created_at),
        confirmed_at=as_utc(enrollment.confirmed_at) if enrollment.confirmed_at else None,
        cancelled_at=as_utc(enrollment.cancelled_at) if enrollment.cancelled_at else None,
        cancel_reason=enrollment.cancel_reason,
        completed_at=as_utc(enrollment.completed_at) if enrollment.completed_at else None,
    )


async def enroll(*, ctx: EnrollmentsContext, identity: Identity, request: EnrollRequest) -> EnrollmentStarted:
    """Enrols the caller in a course: runs the saga up to the payment order."""
    saga = await ctx.saga.start(user_id=identity.user_id, course_id=request.course_id)
    if saga.state not in (AWAITING_PAYMENT, "confirmed"):
        raise SagaBusy("This enrolment was cancelled while it was being set up", saga_state=saga.state)
    return EnrollmentStarted(
        enrollment_id=saga.enrollment_id,
        status="pending_payment" if saga.state == AWAITING_PAYMENT else "confirmed",
        saga_id=saga.id,
        order=saga.payment_order,
    )


async def list_enrollments(*, db: AsyncSession, identity: Identity, user_id: uuid.UUID) -> EnrollmentList:
    """Lists a student's enrolments with their progress (the student themself, or an admin)."""
    identity.require_self_or_admin(user_id)
    enrollments = await repository.list_enrollments(db=db, user_id=user_id)
    ids = [e.id for e in enrollments]
    done = await repository.completed_lessons(db=db, enrollment_ids=ids)
    sagas = await repository.saga_states(db=db, enrollment_ids=ids)
    return EnrollmentList(
        items=[enrollment_out(e, done=done.get(e.id, set()), saga=sagas.get(e.id)) for e in enrollments]
    )


async def get_status(*, db: AsyncSession, identity: Identity, enrollment_id: uuid.UUID) -> EnrollmentStatus:
    """Gets an enrolment's status, its saga with every step, and its progress (owner or admin)."""
    # The enrolment first, then its saga: each read sees what was committed when it ran (PostgreSQL's
    # read committed; SQLite's reads outside a transaction), and a payment confirms the enrolment and
    # marks the saga's order paid in one commit. Read the other way round, a commit landing between
    # the two showed a confirmed enrolment with its order unpaid.
    enrollment = await repository.get_enrollment(db=db, enrollment_id=enrollment_id)
    saga = await repository.saga_of_enrollment(db=db, enrollment_id=enrollment_id)
    if saga is None:
        raise EnrollmentNotFound("No such enrolment")
    identity.require_self_or_admin(saga.user_id)
    steps = await repository.saga_steps(db=db, saga_id=saga.id)
    done = (await repository.completed_lessons(db=db, enrollment_ids=[enrollment_id])).get(enrollment_id, set())
    lesson_ids = enrollment.lesson_ids if enrollment is not None else None
    return EnrollmentStatus(
        enrollment_id=enrollment_id,
        user_id=saga.user_id,
        course_id=saga.course_id,
        status=enrollment.status if enrollment is not None else "not_created",
        progress_percent=percent(done, lesson_ids),
        completed_lessons=len(done),
        total_lessons=len(lesson_ids) if lesson_ids is not None else None,
        completed_at=as_utc(enrollment.completed_at) if enrollment is not None and enrollment.completed_at else None,
        order=saga.payment_order,
        saga=SagaOut(
            id=saga.id,
            state=saga.state,
            step=saga.step,
            attempts=saga.attempts,
            last_error=saga.last_error,
            cancel_reason=saga.cancel_reason,
            order_id=saga.order_id,
            reservation_id=saga.reservation_id,
            amount_paise=saga.amount_paise,
            created_at=as_utc(saga.created_at),
            updated_at=as_utc(saga.updated_at),
            steps=[SagaStepOut(step=s.step, outcome=s.outcome, detail=s.detail, at=as_utc(s.at)) for s in steps],
        ),
    )


async def cancel_enrollment(
    *, db: AsyncSession, ctx: EnrollmentsContext, identity: Identity, enrollment_id: uuid.UUID
) -> EnrollmentOut:
    """Cancels an enrolment (owner or admin): compensates an unpaid one, frees a confirmed one's seat."""
    # The saga runs its own transaction per step; the request's session is first used for the
    # answer, so that it holds no connection while the saga waits on other services.
    saga, enrollment = await ctx.saga.find(enrollment_id)
    if saga is None:
        raise EnrollmentNotFound("No such enrolment")
    identity.require_self_or_admin(saga.user_id)
    if enrollment is None:
        if saga.state in FORWARD_STEPS:
            raise SagaBusy("This enrolment is still being set up; try again in a moment")
        raise EnrollmentNotFound("This enrolment was never created", saga_state=saga.state)
    by = "student" if identity.user_id == saga.user_id else "admin"
    saga = await ctx.saga.cancel(saga_id=saga.id, reason=f"cancelled_by_{by}")
    enrollment = await repository.get_enrollment(db=db, enrollment_id=enrollment_id)
    assert enrollment is not None
    done = (await repository.completed_lessons(db=db, enrollment_ids=[enrollment_id])).get(enrollment_id, set())
    return enrollment_out(enrollment, done=done, saga=saga)
