from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.events import define_inbox, define_outbox
from services.kit.time import utcnow


class CoursesBase(DeclarativeBase):
    """The courses service's own tables (its own schema or file).

    The search index (``course_search``) is not mapped here: it is a tsvector table on PostgreSQL
    and an FTS5 virtual table on SQLite, created by the migration and kept by ``search.py``.
    """


class Course(CoursesBase):
    __tablename__ = "courses"
    __table_args__ = (Index("ix_courses_grade_subject", "grade", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(60))
    grade: Mapped[str] = mapped_column(String(16))
    price_paise: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    capacity: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Lesson(CoursesBase):
    __tablename__ = "lessons"
    __table_args__ = (UniqueConstraint("course_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text, default="")


class CurriculumTopic(CoursesBase):
    """One topic of a grade's syllabus, inside its unit; both in teaching order."""

    __tablename__ = "curriculum"
    __table_args__ = (UniqueConstraint("grade", "unit_position", "topic_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grade: Mapped[str] = mapped_column(String(16))
    unit_position: Mapped[int] = mapped_column(Integer)
    unit_title: Mapped[str] = mapped_column(String(200))
    topic_position: Mapped[int] = mapped_column(Integer)
    topic_title: Mapped[str] = mapped_column(String(200))


class ContentFile(CoursesBase):
    """A lesson's file: its bytes live in content storage under ``storage_key``."""

    __tablename__ = "content_files"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    lesson_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeatReservation(CoursesBase):
    """One seat held for an enrolment; the reservation id makes reserve and release idempotent."""

    __tablename__ = "seat_reservations"

    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    # Null for a release that arrived before its reservation (kept so that the late reserve is refused).
    student_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CourseEnrolment(CoursesBase):
    """A student's enrolment in a course, as the enrollments service announced it: who may open lesson files.

    A local copy fed by events (confirmed, completed, cancelled), so that lesson files stay open
    to enrolled students while the enrollments service is down; no foreign key to ``courses``,
    as an event is taken as told whatever order it arrives in.
    """

    __tablename__ = "course_enrolments"
    __table_args__ = (Index("ix_course_enrolments_user_course", "user_id", "course_id"),)

    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


OUTBOX = define_outbox(CoursesBase.metadata)
INBOX = define_inbox(CoursesBase.metadata)
