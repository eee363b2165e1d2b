from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.events import define_outbox
from services.kit.time import utcnow


class AssessmentsBase(DeclarativeBase):
    """The assessments service's own tables (its own schema or file)."""


class Question(AssessmentsBase):
    """A live question: multiple choice (options, correct_option) or free text (rubric)."""

    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_topic_difficulty", "topic", "difficulty"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    topic: Mapped[str] = mapped_column(String(64))
    difficulty: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    stem: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str] | None] = mapped_column(JSON)
    correct_option: Mapped[int | None] = mapped_column(Integer)
    rubric: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    explanation: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TestAttempt(AssessmentsBase):
    """One test: started by its first draw, submitted once; its id is chosen by the client when the test starts."""

    __tablename__ = "test_attempts"
    __test__ = False  # not a pytest test class

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    topic: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    question_count: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Null until the attempt is submitted; set once, by the submission that scores it."""


class AttemptQuestion(AssessmentsBase):
    """A question an attempt drew: the only questions its submission may answer."""

    __tablename__ = "attempt_questions"

    attempt_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("test_attempts.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("questions.id"), primary_key=True)
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudentResponse(AssessmentsBase):
    __tablename__ = "student_responses"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    attempt_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("test_attempts.id", ondelete="CASCADE"))
    question_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("questions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    choice: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    correct: Mapped[bool] = mapped_column(Boolean)
    feedback: Mapped[str | None] = mapped_column(String(500))


class AssessmentResult(AssessmentsBase):
    __tablename__ = "assessment_results"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    attempt_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("test_attempts.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    topic: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    percentage: Mapped[float] = mapped_column(Float)
    correct_count: Mapped[int] = mapped_column(Integer)
    question_count: Mapped[int] = mapped_column(Integer)
    rating_before: Mapped[float] = mapped_column(Float)
    rating_after: Mapped[float] = mapped_column(Float)
    predicted_neet_score: Mapped[int] = mapped_column(Integer)
    prediction_method: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudentRating(AssessmentsBase):
    """A student's Elo-style rating, moved by every submitted attempt."""

    __tablename__ = "student_ratings"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    rating: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


OUTBOX = define_outbox(AssessmentsBase.metadata)
