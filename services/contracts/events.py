"""Event contracts: the routing key of every event and the fields its ``data`` carries.

A publisher builds its payload from these models; a consumer reads with them, so that a renamed
or missing field fails a test instead of silently producing nothing downstream.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def data(self) -> dict[str, Any]:
        """The JSON-ready dict to pass to ``record_event(..., data=...)``."""
        return self.model_dump(mode="json")


class UserRegistered(Payload):
    user_id: uuid.UUID
    email: str
    full_name: str | None = None
    role: str = "student"
    grade: str | None = None
    target_exam: str | None = None


class UserDeleted(Payload):
    user_id: uuid.UUID


class CourseChanged(Payload):
    course_id: uuid.UUID
    title: str
    grade: str
    price_paise: int


class EnrollmentCreated(Payload):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    saga_id: uuid.UUID
    amount_paise: int


class EnrollmentConfirmed(Payload):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    amount_paise: int
    confirmed_at: datetime


class EnrollmentCancelled(Payload):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    reason: str


class ProgressUpdated(Payload):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID
    percent: float
    time_spent_seconds: int
    completed_lessons: int
    total_lessons: int


class EnrollmentCompleted(Payload):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    completed_at: datetime


class PaymentSucceeded(Payload):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    course_id: uuid.UUID | None
    amount_paise: int
    currency: str = "INR"


class PaymentFailed(Payload):
    order_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    reason: str


class AssessmentSubmitted(Payload):
    attempt_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    question_count: int
    duration_seconds: int
    submitted_at: datetime


class AssessmentCompleted(Payload):
    result_id: uuid.UUID
    attempt_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    score: float
    max_score: float
    percentage: float
    correct_count: int
    predicted_neet_score: float | None = None
    completed_at: datetime


CONTRACTS: dict[str, type[Payload]] = {
    "user.registered": UserRegistered,
    "user.deleted": UserDeleted,
    "course.created": CourseChanged,
    "course.updated": CourseChanged,
    "course.published": CourseChanged,
    "enrollment.created": EnrollmentCreated,
    "enrollment.confirmed": EnrollmentConfirmed,
    "enrollment.cancelled": EnrollmentCancelled,
    "enrollment.progress_updated": ProgressUpdated,
    "enrollment.completed": EnrollmentCompleted,
    "payment.succeeded": PaymentSucceeded,
    "payment.failed": PaymentFailed,
    "assessment.submitted": AssessmentSubmitted,
    "assessment.completed": AssessmentCompleted,
}


def parse(event_type: str, data: dict[str, Any]) -> Payload:
    """Reads an event's data with its contract; raises pydantic's ValidationError when it breaks it."""
    return CONTRACTS[event_type].model_validate(data)
