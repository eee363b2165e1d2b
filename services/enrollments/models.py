from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.events import define_inbox, define_outbox
from services.kit.time import utcnow

ACTIVE_STATUSES = ("pending_payment", "confirmed")
_ACTIVE = text("status IN ('pending_payment', 'confirmed')")


class EnrollmentsBase(DeclarativeBase):
    """The enrollments service's own tables (its own schema or file)."""


class Enrollment(EnrollmentsBase):
    """A student's place on a course: pending until paid, then confirmed, or cancelled."""

    __tablename__ = "enrollments"
    __table_args__ = (
        # One active enrolment per student and course; a cancelled one does not count.
        Index(
            "uq_enrollments_active_student_course",
            "user_id",
            "course_id",
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    course_title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    amount_paise: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The course's lesson ids, read from the courses service at the first progress update.
    lesson_ids: Mapped[list[str] | None] = mapped_column(JSON)
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EnrollmentProgress(EnrollmentsBase):
    """A student's progress through one lesson of an enrolment."""

    __tablename__ = "enrollment_progress"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    lesson_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    time_spent_seconds: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CourseCompletion(EnrollmentsBase):
    """Recorded once, when an enrolment's lessons are all completed."""

    __tablename__ = "course_completions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("enrollments.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    total_time_seconds: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnrollmentSagaRecord(EnrollmentsBase):
    """The enrolment saga's state, written after every step so that a restart resumes it.

    ``state`` says where the saga is (a running step, awaiting_payment, compensating or a terminal
    state); ``step`` the step it is at, which for ``compensating`` is the next compensation to run.
    The saga's own id is the seat reservation id and the payment order's idempotency key.
    """

    __tablename__ = "enrollment_sagas"
    __table_args__ = (Index("ix_enrollment_sagas_state_updated", "state", "updated_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    course_title: Mapped[str | None] = mapped_column(String(200))
    amount_paise: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    # The course's lessons as check_course read them; the enrolment starts with them.
    lesson_ids: Mapped[list[str] | None] = mapped_column(JSON)
    # Set when the reserve call is first sent (the seat may be held from then on); cleared when
    # courses refused it, so that compensation releases only what may be held.
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payment_order: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    paid_after_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SagaStep(EnrollmentsBase):
    """One step or compensation a saga ran, and how it ended."""

    __tablename__ = "saga_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("enrollment_sagas.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


OUTBOX = define_outbox(EnrollmentsBase.metadata)
INBOX = define_inbox(EnrollmentsBase.metadata)
