"""Fake users, courses and payments services: small FastAPI apps that keep real state and log every call.

They are served to the enrolment saga through the kit's ``AsgiTransport`` (one app per host), and
each can be told to fail (any status) or hang on a chosen call.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.contracts.events import PaymentFailed, PaymentRefunded, PaymentSucceeded
from services.kit.auth import TokenVerifier
from services.kit.events import Event
from services.kit.http import ASGIApp, AsgiTransport

USERS_URL, COURSES_URL, PAYMENTS_URL = "http://users.test", "http://courses.test", "http://payments.test"
CALL_NAMES = (
    "get_user",
    "get_course",
    "reserve_seat",
    "release_seat",
    "create_order",
    "cancel_order",
    "refund_order",
)


@dataclass
class Call:
    name: str
    path: str
    body: dict[str, Any] | None
    role: str | None
    idempotency_key: str | None = None


def problem(status: int, type_: str, detail: str) -> JSONResponse:
    body = {"type": f"https://cerebrum.academy/problems/{type_}", "title": type_, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@dataclass
class FakeUpstreams:
    verifier: TokenVerifier
    calls: list[Call] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_keys: dict[str, str] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)

    # Set-up and switches --------------------------------------------------------------------------
    def add_user(self, status: str = "active") -> uuid.UUID:
        user_id = uuid.uuid4()
        self.users[str(user_id)] = {"id": str(user_id), "email": f"{user_id.hex[:8]}@example.in", "status": status}
        return user_id

    def add_course(
        self, *, capacity: int = 30, price_paise: int = 1_499_900, lessons: int = 3, **extra: Any
    ) -> uuid.UUID:
        course_id = uuid.uuid4()
        self.courses[str(course_id)] = {
            "id": str(course_id),
            "title": "Human Physiology for NEET",
            "price_paise": price_paise,
            "currency": "INR",
            "capacity": capacity,
            "seats_taken": 0,
            "is_active": True,
            "is_published": True,
            "lessons": [
                {"id": str(uuid.uuid4()), "position": i + 1, "title": f"Lesson {i + 1}", "duration_minutes": 40}
                for i in range(lessons)
            ],
            **extra,
        }
        return course_id

    def fail(self, name: str, status: int = 503) -> None:
        """Answers every later call of that name with the status (until ``heal``)."""
        assert name in CALL_NAMES, name
        self.failures[name] = status

    def hang(self, name: str) -> None:
        self.hanging.add(name)

    def heal(self) -> None:
        self.failures.clear()
        self.hanging.clear()

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def seats_taken(self, course_id: uuid.UUID) -> int:
        return int(self.courses[str(course_id)]["seats_taken"])

    def held(self, course_id: uuid.UUID) -> list[str]:
        return [r for r, v in self.reservations.items() if v["course_id"] == str(course_id) and v["status"] == "held"]

    # Payment events --------------------------------------------------------------------------------
    def payment_succeeded(self, order_id: str, *, event_id: uuid.UUID | None = None) -> Event:
        """Marks an order paid and makes the event payments would publish."""
        order = self.orders[order_id]
        order["status"] = "paid"
        order.setdefault("payment_id", str(uuid.uuid4()))
        data = PaymentSucceeded(
            payment_id=order["payment_id"],
            order_id=uuid.UUID(order_id),
            enrollment_id=order["enrollment_id"],
            user_id=order["user_id"],
            course_id=order["course_id"],
            amount_paise=order["amount_paise"],
        ).data()
        return _event("payment.succeeded", data, event_id)

    def payment_refunded(self, order_id: str) -> Event:
        """Marks an order refunded and makes the event payments would publish."""
        order = self.orders[order_id]
        order["status"] = "refunded"
        order.setdefault("refund_id", str(uuid.uuid4()))
        data = PaymentRefunded(
            refund_id=order["refund_id"],
            order_id=uuid.UUID(order_id),
            payment_id=order["payment_id"],
            enrollment_id=order["enrollment_id"],
            user_id=order["user_id"],
            course_id=order["course_id"],
            amount_paise=order["amount_paise"],
            description=order["description"],
            credit_note_number="CN/1",
            reason="admin",
            refunded_at=datetime.now(UTC),
        ).data()
        return _event("payment.refunded", data, None)

    def payment_failed(self, order_id: str, reason: str = "card_declined") -> Event:
        order = self.orders[order_id]
        order["status"] = "expired" if reason == "expired" else "failed"
        data = PaymentFailed(
            order_id=uuid.UUID(order_id), enrollment_id=order["enrollment_id"], user_id=order["user_id"], reason=reason
        ).data()
        return _event("payment.failed", data, None)

    # The apps ---------------------------------------------------------------------------------------
    def transport(self) -> AsgiTransport:
        apps = {"users.test": self._users(), "courses.test": self._courses(), "payments.test": self._payments()}

        async def by_host(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await apps[scope["server"][0]](scope, receive, send)

        dispatcher: ASGIApp = by_host
        return AsgiTransport(lambda: dispatcher)

    async def _called(self, name: str, request: Request, body: dict[str, Any] | None = None) -> JSONResponse | None:
        """Logs the call; answers for it when a failure is switched on."""
        role = None
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            role = self.verifier.verify(auth[7:]).role
        self.calls.append(Call(name, request.url.path, body, role, request.headers.get("idempotency-key")))
        if name in self.hanging:
            await asyncio.Event().wait()
        if name in self.failures:
            return problem(self.failures[name], "injected", f"{name} failed on purpose")
        if role not in ("service", "admin"):
            return problem(403, "forbidden", "a service token is needed")
        return None

    def _users(self) -> FastAPI:
        app = FastAPI()

        @app.get("/users/{user_id}")
        async def get_user(user_id: str, request: Request) -> Any:
            if (failed := await self._called("get_user", request)) is not None:
                return failed
            if user_id not in self.users:
                return problem(404, "not-found", "No such user")
            return {**self.users[user_id], "role": "student"}

        return app

    def _courses(self) -> FastAPI:
        app = FastAPI()

        @app.get("/courses/{course_id}")
        async def get_course(course_id: str, request: Request) -> Any:
            if (failed := await self._called("get_course", request)) is not None:
                return failed
            course = self.courses.get(course_id)
            if course is None:
                return problem(404, "not-found", "No such course")
            return {**course, "seats_left": course["capacity"] - course["seats_taken"]}

        @app.post("/courses/{course_id}/seats/reserve")
        async def reserve(course_id: str, request: Request) -> Any:
            body = await request.json()
            if (failed := await self._called("reserve_seat", request, body)) is not None:
                return failed
            course = self.courses.get(course_id)
            if course is None:
                return problem(404, "not-found", "No such course")
            existing = self.reservations.get(body["reservation_id"])
            if existing is not None:
                if existing["status"] != "held":
                    return problem(409, "conflict", "This reservation was already released")
            elif course["seats_taken"] >= course["capacity"]:
                return problem(409, "no-seats-left", "No seats left on this course")
            else:
                course["seats_taken"] += 1
                existing = {"course_id": course_id, "student_id": body["student_id"], "status": "held"}
                self.reservations[body["reservation_id"]] = existing
            left = course["capacity"] - course["seats_taken"]
            return {**existing, "reservation_id": body["reservation_id"], "seats_left": left}

        @app.post("/courses/{course_id}/seats/release")
        async def release(course_id: str, request: Request) -> Any:
            body = await request.json()
            if (failed := await self._called("release_seat", request, body)) is not None:
                return failed
            course = self.courses[course_id]
            existing = self.reservations.get(body["reservation_id"])
            if existing is None:  # released before reserved: a late reserve is refused
                existing = {"course_id": course_id, "student_id": None, "status": "released"}
                self.reservations[body["reservation_id"]] = existing
            elif existing["status"] == "held":
                existing["status"] = "released"
                course["seats_taken"] -= 1
            return {**existing, "reservation_id": body["reservation_id"]}

        return app

    def _payments(self) -> FastAPI:
        app = FastAPI()

        @app.post("/payments/create-order")
        async def create_order(request: Request) -> Any:
            body = await request.json()
            if (failed := await self._called("create_order", request, body)) is not None:
                return failed
            key = request.headers["idempotency-key"]
            if key in self.order_keys:
                return JSONResponse(self._public(self.orders[self.order_keys[key]]), status_code=200)
            order_id = str(uuid.uuid4())
            self.orders[order_id] = {
                **body,
                "order_id": order_id,
                "provider_order_id": f"order_{order_id[:12]}",
                "status": "created",
                "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
                "key_id": "rzp_test_key",
            }
            self.order_keys[key] = order_id
            return JSONResponse(self._public(self.orders[order_id]), status_code=201)

        @app.post("/payments/orders/{order_id}/refund")
        async def refund_order(order_id: str, request: Request) -> Any:
            body = await request.json()
            if (failed := await self._called("refund_order", request, body)) is not None:
                return failed
            order = self.orders.get(order_id)
            if order is None:
                return problem(404, "not-found", "No such order")
            if order.get("refund_window_closed"):
                return problem(409, "refund-window-closed", "Refunds are given within 7 days of payment")
            if order["status"] not in ("paid", "refunded"):
                return problem(409, "order-not-refundable", f"This order is {order['status']}")
            order["status"] = "refunded"
            order.setdefault("refund_id", str(uuid.uuid4()))
            return {"refund_id": order["refund_id"], "order_status": "refunded", "credit_note": {"number": "CN/1"}}

        @app.post("/payments/orders/{order_id}/cancel")
        async def cancel_order(order_id: str, request: Request) -> Any:
            if (failed := await self._called("cancel_order", request)) is not None:
                return failed
            order = self.orders.get(order_id)
            if order is None:
                return problem(404, "not-found", "No such order")
            if order["status"] == "paid":
                return problem(409, "already-paid", "This order is paid")
            order["status"] = "cancelled"
            return self._public(order)

        return app

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if k not in ("description", "course_id", "payment_id")}


def _event(type_: str, data: dict[str, Any], event_id: uuid.UUID | None) -> Event:
    return Event(id=event_id or uuid.uuid4(), type=type_, source="payments", occurred_at=datetime.now(UTC), data=data)
