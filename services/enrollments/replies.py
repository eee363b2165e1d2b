"""What the saga reads from users, courses and payments: typed replies instead of dicts.

Each model names the fields the saga acts on, with the defaults it has always assumed; a reply
may carry more (it may grow without breaking the saga). The order is kept whole on the saga.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class UpstreamReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserReply(UpstreamReply):
    """``GET /users/{id}`` from users."""

    status: str = "active"


class LessonReply(UpstreamReply):
    id: uuid.UUID
    position: int = 0


class CourseReply(UpstreamReply):
    """``GET /courses/{id}`` from courses."""

    title: str = ""
    price_paise: int = 0
    currency: str = "INR"
    is_active: bool = True
    is_published: bool = True
    seats_left: int | None = None
    """As the course was read; the seat's reservation decides (None: not said)."""
    lessons: list[LessonReply] = []

    def lesson_ids(self) -> list[str]:
        """The lessons' ids in the course's order."""
        return [str(lesson.id) for lesson in sorted(self.lessons, key=lambda lesson: lesson.position)]


class OrderReply(BaseModel):
    """``POST /payments/create-order`` from payments; every field is kept (the saga stores the order)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    order_id: uuid.UUID


class CreditNoteReply(UpstreamReply):
    number: str


class RefundReply(UpstreamReply):
    """``POST /payments/orders/{id}/refund`` from payments."""

    refund_id: uuid.UUID
    credit_note: CreditNoteReply


class ProblemReply(UpstreamReply):
    """A problem+json refusal (RFC 9457) from any of them."""

    type: str = "about:blank"
    title: str = ""
    detail: str = ""
