from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.kit.schemas import StrictInput


class EnrollRequest(StrictInput):
    course_id: uuid.UUID


class ProgressUpdate(StrictInput):
    lesson_id: uuid.UUID
    completed: bool
    # The time spent on this lesson so far (a total, so that repeating the call changes nothing).
    time_spent_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)


class EnrollmentStarted(BaseModel):
    enrollment_id: uuid.UUID
    status: str
    saga_id: uuid.UUID
    order: dict[str, Any] | None


class EnrollmentOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    status: str
    amount_paise: int
    currency: str
    order_id: uuid.UUID | None
    progress_percent: float
    saga_state: str | None
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    completed_at: datetime | None


class EnrollmentList(BaseModel):
    items: list[EnrollmentOut]


class SagaStepOut(BaseModel):
    step: str
    outcome: str
    detail: str | None
    at: datetime


class SagaOut(BaseModel):
    id: uuid.UUID
    state: str
    step: str
    attempts: int
    last_error: str | None
    cancel_reason: str | None
    order_id: uuid.UUID | None
    reservation_id: uuid.UUID | None
    amount_paise: int | None
    created_at: datetime
    updated_at: datetime
    steps: list[SagaStepOut]


class EnrollmentStatus(BaseModel):
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    # The enrolment's status; "not_created" when the saga stopped before creating it.
    status: str
    progress_percent: float
    completed_lessons: int
    total_lessons: int | None
    completed_at: datetime | None
    # The payment order to pay while the enrolment is pending (also after a recovered saga).
    order: dict[str, Any] | None
    saga: SagaOut


class ProgressOut(BaseModel):
    enrollment_id: uuid.UUID
    lesson_id: uuid.UUID
    completed: bool
    time_spent_seconds: int
    progress_percent: float
    completed_lessons: int
    total_lessons: int
    course_completed: bool
