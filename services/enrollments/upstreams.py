"""The services the saga calls, one client each, with their replies read into results or refusals.

A 5xx, a timeout or an open breaker is already a ``DependencyUnavailable`` (the kit's client); a
4xx the contract foresees becomes a domain refusal; any other 4xx means the two services disagree
on the contract, which no retry mends: it is reported as the upstream being unavailable.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from observability.problems import problem_type
from services.contracts.problems import NO_SEATS_LEFT, REFUND_WINDOW_CLOSED
from services.enrollments.errors import (
    CourseNotFound,
    CourseNotOpen,
    NoSeatsLeft,
    OrderRefused,
    RefundWindowClosed,
    UserNotFound,
)
from services.enrollments.replies import CourseReply, OrderReply, ProblemReply, RefundReply, UserReply
from services.enrollments.settings import EnrollmentsSettings
from services.kit.auth import ServiceTokens
from services.kit.errors import DependencyUnavailable
from services.kit.http import Reply, ServiceClient, Transport, breaker_factory

log = structlog.get_logger("cerebrum.enrollments.upstreams")


Answer = TypeVar("Answer", bound=BaseModel)


def _problem(reply: Reply) -> ProblemReply:
    try:
        return ProblemReply.model_validate_json(reply.body)
    except ValidationError:
        return ProblemReply()


def _unexpected(upstream: str, reply: Reply) -> DependencyUnavailable:
    detail = _problem(reply).detail[:200]
    log.error("upstream_contract_broken", upstream=upstream, status=reply.status, detail=detail)
    return DependencyUnavailable(upstream, f"{upstream} refused the call ({reply.status})")


def _read(model: type[Answer], upstream: str, reply: Reply) -> Answer:
    """The reply's body as the model; a body that breaks it is the contract broken, as any odd reply."""
    try:
        return model.model_validate_json(reply.body)
    except ValidationError as exc:
        log.error("upstream_reply_unreadable", upstream=upstream, status=reply.status, errors=exc.error_count())
        raise DependencyUnavailable(upstream, f"{upstream} answered what the contract does not allow") from exc


class Upstreams:
    """Users, courses and payments, as the enrolment saga needs them."""

    def __init__(self, *, settings: EnrollmentsSettings, transport: Transport, tokens: ServiceTokens) -> None:
        breakers = breaker_factory(
            settings.service_name, threshold=settings.breaker_threshold, ttl=settings.breaker_ttl_seconds
        )

        def client(upstream: str, base_url: str) -> ServiceClient:
            return ServiceClient(
                service=settings.service_name,
                upstream=upstream,
                base_url=base_url,
                transport=transport,
                breakers=breakers,
                timeout=settings.call_timeout_seconds,
                retries=settings.call_retries,
            )

        self.users = client("users", settings.users_url)
        self.courses = client("courses", settings.courses_url)
        self.payments = client("payments", settings.payments_url)
        self.tokens = tokens

    async def get_user(self, user_id: uuid.UUID) -> UserReply:
        """Gets a user; refuses one the users service does not know."""
        reply = await self.users.request("GET", f"/users/{user_id}", token=self.tokens.token())
        if reply.status == 200:
            return _read(UserReply, "users", reply)
        if reply.status == 404:
            raise UserNotFound("No such user; sign in again", user_id=str(user_id))
        raise _unexpected("users", reply)

    async def get_course(self, course_id: uuid.UUID) -> CourseReply:
        """Gets a course with its lessons; refuses one that does not exist."""
        reply = await self.courses.request("GET", f"/courses/{course_id}", token=self.tokens.token())
        if reply.status == 200:
            return _read(CourseReply, "courses", reply)
        if reply.status == 404:
            raise CourseNotFound("No such course", course_id=str(course_id))
        raise _unexpected("courses", reply)

    async def reserve_seat(self, *, course_id: uuid.UUID, reservation_id: uuid.UUID, student_id: uuid.UUID) -> None:
        """Holds a seat, once per reservation id; refuses when the course is full or closed."""
        reply = await self.courses.request(
            "POST",
            f"/courses/{course_id}/seats/reserve",
            json={"reservation_id": str(reservation_id), "student_id": str(student_id)},
            token=self.tokens.token(),
        )
        if reply.status == 200:
            return
        if reply.status == 404:
            raise CourseNotFound("No such course", course_id=str(course_id))
        if reply.status == 409:
            problem = _problem(reply)
            if problem.type == problem_type(NO_SEATS_LEFT):
                raise NoSeatsLeft("No seats left on this course", course_id=str(course_id))
            raise CourseNotOpen(problem.detail or "This course is not open for enrolment")
        raise _unexpected("courses", reply)

    async def release_seat(self, *, course_id: uuid.UUID, reservation_id: uuid.UUID) -> None:
        """Frees a held seat; releasing again, or a seat never held, changes nothing."""
        reply = await self.courses.request(
            "POST",
            f"/courses/{course_id}/seats/release",
            json={"reservation_id": str(reservation_id)},
            token=self.tokens.token(),
        )
        if reply.status in (200, 404):  # a course deleted since holds no seat to free
            return
        raise _unexpected("courses", reply)

    async def create_order(
        self,
        *,
        saga_id: uuid.UUID,
        user_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        course_id: uuid.UUID,
        amount_paise: int,
        currency: str,
        description: str,
    ) -> OrderReply:
        """Creates the enrolment's payment order, once per saga (the idempotency key)."""
        reply = await self.payments.request(
            "POST",
            "/payments/create-order",
            json={
                "user_id": str(user_id),
                "enrollment_id": str(enrollment_id),
                "course_id": str(course_id),
                "amount_paise": amount_paise,
                "currency": currency,
                "description": description,
            },
            headers={"Idempotency-Key": str(saga_id)},
            token=self.tokens.token(),
        )
        if reply.status in (200, 201):
            return _read(OrderReply, "payments", reply)
        if reply.status in (409, 422):
            detail = _problem(reply).detail or "payments refused the order"
            raise OrderRefused(f"The payment order could not be created: {detail}"[:300])
        raise _unexpected("payments", reply)

    async def cancel_order(self, order_id: uuid.UUID) -> bool:
        """Cancels an unpaid order; False when it was paid already (it cannot be cancelled)."""
        reply = await self.payments.request("POST", f"/payments/orders/{order_id}/cancel", token=self.tokens.token())
        if reply.status in (200, 404):
            return True
        if reply.status == 409:
            return False
        raise _unexpected("payments", reply)

    async def refund_order(self, order_id: uuid.UUID, *, reason: str) -> RefundReply:
        """Refunds a paid order in full, once (a repeat answers with that refund); refuses outside the window."""
        reply = await self.payments.request(
            "POST", f"/payments/orders/{order_id}/refund", json={"reason": reason}, token=self.tokens.token()
        )
        if reply.status == 200:
            return _read(RefundReply, "payments", reply)
        problem = _problem(reply)
        if reply.status == 409 and problem.type == problem_type(REFUND_WINDOW_CLOSED):
            raise RefundWindowClosed(problem.detail or "This enrolment is past its refund window")
        raise _unexpected("payments", reply)
