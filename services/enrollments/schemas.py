from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from services.kit.schemas import StrictInput


class EnrollRequest(StrictInput):
    course_id: uuid.UUID


class ProgressUpdate(StrictInput):
    """One lesson's progress: whether it is done, and the time spent on it so far.

    Each field left out keeps its stored value, so marking a lesson done needs no time and a
    time update does not touch completion.
    """

    lesson_id: uuid.UUID
    completed: bool | None = Field(
        default=None, description="Done (true) or not done again (false); left out, unchanged"
    )
    time_spent_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description=(
            "The client's running total of time spent on this lesson, never a delta: repeating a call "
            "changes nothing. It only grows: a total below the stored one is refused (409 "
            "time-spent-decreased); left out, the stored time is unchanged."
        ),
    )

    @model_validator(mode="after")
    def _something_to_record(self) -> ProgressUpdate:
        if self.completed is None and self.time_spent_seconds is None:
            raise ValueError("send completed, time_spent_seconds, or both")
        return self


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
    time_spent_seconds: int = Field(description="This lesson's total, after the update")
    progress_percent: float
    completed_lessons: int
    total_lessons: int
    course_completed: bool
