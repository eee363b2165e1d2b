"""Event contracts: the routing key of every event and the fields its ``data`` carries.

A publisher builds one of these models and hands it to ``record_event``, which takes the routing
key from the model; a consumer reads with them, so that a renamed or missing field fails a test
instead of silently producing nothing downstream.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event_type: ClassVar[str]
    """The routing key the event is published under."""

    def data(self) -> dict[str, Any]:
        """The JSON-ready dict an event carries as its ``data``."""
        return self.model_dump(mode="json")


class UserRegistered(Payload):
    event_type = "user.registered"

    user_id: uuid.UUID
    email: str
    full_name: str | None = None
    role: str = "student"
    grade: str | None = None
    target_exam: str | None = None


class UserUpdated(Payload):
    """A profile changed: the user's contact facts as they are now, and which of them changed.

    Services that keep a copy of a user (communication's contact) replace it with these.
    """

    event_type = "user.updated"

    user_id: uuid.UUID
    changed: list[str]
    email: str
    full_name: str | None = None
    phone: str | None = None
    grade: str | None = None
    target_exam: str | None = None


class UserDeleted(Payload):
    """An account was deleted: every service forgets or pseudonymises the person's data."""

    event_type = "user.deleted"

    user_id: uuid.UUID


class CourseChanged(Payload):
    """The public facts of a course that other services may keep a copy of."""

    course_id: uuid.UUID
    slug: str
    title: str
    subject: str
    grade: str
    price_paise: int
    currency: str
    capacity: int
    is_active: bool
    is_published: bool


class CourseCreated(CourseChanged):
    event_type = "course.created"


class CourseUpdated(CourseChanged):
    event_type = "course.updated"

    changed: list[str]
    """The fields (and ``lessons``) the update changed."""


class CoursePublished(CourseChanged):
    event_type = "course.published"


class EnrollmentCreated(Payload):
    event_type = "enrollment.created"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    saga_id: uuid.UUID
    amount_paise: int


class EnrollmentConfirmed(Payload):
    event_type = "enrollment.confirmed"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    amount_paise: int
    confirmed_at: datetime


class EnrollmentCancelled(Payload):
    event_type = "enrollment.cancelled"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    reason: str


class ProgressUpdated(Payload):
    event_type = "enrollment.progress_updated"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID
    percent: float
    time_spent_seconds: int
    """The time spent on this lesson so far, all updates together."""
    time_added_seconds: int = 0
    """The time this update added: what analytics adds to the learner's day."""
    completed_lessons: int
    total_lessons: int


class EnrollmentCompleted(Payload):
    event_type = "enrollment.completed"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    completed_at: datetime
    course_title: str | None = None
    """The course's title as the student enrolled in it (none in events from before it was sent)."""


class EnrollmentReopened(Payload):
    """A completed course is no longer complete: a lesson was marked not done again."""

    event_type = "enrollment.reopened"

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    completed_lessons: int
    total_lessons: int


class PaymentSucceeded(Payload):
    event_type = "payment.succeeded"

    payment_id: uuid.UUID
    order_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    course_id: uuid.UUID | None
    amount_paise: int
    currency: str = "INR"


class PaymentRefunded(Payload):
    """A captured payment was given back to the student, with a GST credit note against its invoice."""

    event_type = "payment.refunded"

    refund_id: uuid.UUID
    order_id: uuid.UUID
    payment_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    course_id: uuid.UUID | None
    amount_paise: int
    currency: str = "INR"
    description: str
    """What the order paid for, as its invoice says."""
    credit_note_number: str
    reason: str
    refunded_at: datetime


class PaymentFailed(Payload):
    event_type = "payment.failed"

    order_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    reason: str


class PaymentOrderCancelled(Payload):
    event_type = "payment.order_cancelled"

    order_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    user_id: uuid.UUID
    course_id: uuid.UUID | None
    previous_status: str
    reason: str


class SubscriptionActivated(Payload):
    event_type = "subscription.activated"

    subscription_id: uuid.UUID
    user_id: uuid.UUID
    plan: str
    period: str
    current_period_end: datetime


class SubscriptionCancelled(Payload):
    event_type = "subscription.cancelled"

    subscription_id: uuid.UUID
    user_id: uuid.UUID
    plan: str
    paid_until: datetime | None
    """The end of the last paid period (access runs to it); none when nothing was paid."""


class AssessmentSubmitted(Payload):
    event_type = "assessment.submitted"

    attempt_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    question_count: int
    duration_seconds: int
    submitted_at: datetime


class AssessmentCompleted(Payload):
    event_type = "assessment.completed"

    result_id: uuid.UUID
    attempt_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    score: float
    max_score: float
    percentage: float
    correct_count: int
    question_count: int | None = None
    """The questions answered in the attempt (none in events from before it was sent)."""
    rating_after: float | None = None
    predicted_neet_score: float | None = None
    completed_at: datetime


CONTRACTS: dict[str, type[Payload]] = {
    contract.event_type: contract
    for contract in (
        UserRegistered,
        UserUpdated,
        UserDeleted,
        CourseCreated,
        CourseUpdated,
        CoursePublished,
        EnrollmentCreated,
        EnrollmentConfirmed,
        EnrollmentCancelled,
        ProgressUpdated,
        EnrollmentCompleted,
        EnrollmentReopened,
        PaymentSucceeded,
        PaymentFailed,
        PaymentRefunded,
        PaymentOrderCancelled,
        SubscriptionActivated,
        SubscriptionCancelled,
        AssessmentSubmitted,
        AssessmentCompleted,
    )
}
"""Every event a service publishes, by routing key (a test fails when a published type is missing)."""


def parse(event_type: str, data: dict[str, Any]) -> Payload:
    """Reads an event's data with its contract; raises pydantic's ValidationError when it breaks it."""
    return CONTRACTS[event_type].model_validate(data)
