"""A paid place from start to end, on the real servers: finishing the course is congratulated; giving
the place up within the refund window brings the money back with a credit note and a message;
after the window it is refused and nothing changes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from cerebrum.platform import Platform
from services.courses.demo import seed_catalogue
from services.payments.models import AuditEntry, CreditNote, Payment, Refund

pytestmark = pytest.mark.integration

STUDENT = {"email": "ananya.menon@example.com", "password": "Loop-of-Henle-42", "full_name": "Ananya Menon"}


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f}s"
        await asyncio.sleep(0.2)
    return found


class Student:
    def __init__(self, api: httpx.AsyncClient, user_id: str, headers: dict[str, str]) -> None:
        self.api, self.user_id, self.headers = api, user_id, headers

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.api.get(path, headers=self.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def paid_place(self, course: dict[str, Any]) -> dict[str, Any]:
        """Enrols in a course, pays through the sandbox checkout and waits for the confirmation."""
        started = await self.api.post("/api/enrollments", json={"course_id": course["id"]}, headers=self.headers)
        assert started.status_code == 201, started.text
        enrollment = started.json()
        checkout = await self.api.post(
            "/api/payments/sandbox/checkout",
            json={"order_id": enrollment["order"]["order_id"], "outcome": "success"},
            headers=self.headers,
        )
        verify = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        assert (await self.api.post("/api/payments/verify", json=verify, headers=self.headers)).status_code == 200

        async def confirmed() -> bool:
            status = await self.get(f"/api/enrollments/{enrollment['enrollment_id']}/status")
            return bool(status["status"] == "confirmed")

        await _until(confirmed, "the payment confirming the enrolment")
        return dict(enrollment)

    async def messages(self, template: str) -> dict[str, dict[str, Any]]:
        page = await self.get(f"/api/notifications/{self.user_id}", limit=100)
        return {m["channel"]: m for m in page["items"] if m["template"] == template}


async def _rows(platform: Platform, model: Any, **where: Any) -> list[Any]:
    async with platform.apps["payments"].state.kit.db.session_scope() as db:
        return list((await db.execute(select(model).filter_by(**where))).scalars())


async def test_a_paid_place_is_congratulated_refunded_in_the_window_and_kept_after_it(
    academy: tuple[Platform, httpx.AsyncClient],
) -> None:
    platform, api = academy
    async with platform.apps["courses"].state.kit.db.session_scope() as db:
        await seed_catalogue(db=db)
    registered = await api.post("/api/auth/register", json=STUDENT)
    assert registered.status_code == 201, registered.text
    login = await api.post("/api/auth/login", json={k: STUDENT[k] for k in ("email", "password")})
    me = Student(api, registered.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"})
    listed = (await me.get("/api/courses"))["items"]
    first, second = [await me.get(f"/api/courses/{c['id']}") for c in listed[:2]]

    # Every lesson of a paid course done: the course is complete, and the student hears of it.
    place = await me.paid_place(first)
    progress = [
        await api.put(
            f"/api/enrollments/{place['enrollment_id']}/progress",
            json={"lesson_id": lesson["id"], "completed": True, "time_spent_seconds": 300},
            headers=me.headers,
        )
        for lesson in first["lessons"]
    ]
    assert [r.status_code for r in progress] == [200] * len(first["lessons"])
    assert progress[-1].json()["course_completed"] is True

    async def congratulated() -> dict[str, dict[str, Any]]:
        found = await me.messages("course_completion")
        return found if set(found) == {"email", "in_app"} else {}

    sent = await _until(congratulated, "the completion message on email and in-app")
    assert sent["email"]["subject"] == f"You completed {first['title']}"
    assert "Hi Ananya Menon" in sent["email"]["body"]
    assert sent["in_app"]["body"] == f"Congratulations, Ananya Menon: you completed {first['title']}!"

    # Giving the place up within the window: refunded, credit note, audit row, seat back, message.
    seats = (await me.get(f"/api/courses/{first['id']}"))["seats_left"]
    cancelled = await api.delete(f"/api/enrollments/{place['enrollment_id']}", headers=me.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    order_id = place["order"]["order_id"]
    assert (await me.get(f"/api/payments/orders/{order_id}"))["status"] == "refunded"
    assert (await me.get(f"/api/courses/{first['id']}"))["seats_left"] == seats + 1
    (refund,) = await _rows(platform, Refund, order_id=place["order"]["order_id"])
    assert refund.amount_paise == first["price_paise"]
    (note,) = await _rows(platform, CreditNote, refund_id=refund.id)
    assert note.total_paise == first["price_paise"] and "/CN/" in note.number
    assert [a.outcome for a in await _rows(platform, AuditEntry, action="refund")] == ["refunded"]

    async def refund_told() -> dict[str, dict[str, Any]]:
        found = await me.messages("refund_confirmation")
        return found if set(found) == {"email", "in_app"} else {}

    told = await _until(refund_told, "the refund message")
    assert note.number in told["email"]["body"] and note.number in told["in_app"]["body"]

    # A place paid for eight days ago is past the window: refused, and everything stays as it was.
    kept = await me.paid_place(second)
    async with platform.apps["payments"].state.kit.db.session_scope() as db:
        paid_at = datetime.now(UTC) - timedelta(days=8)
        kept_order = uuid.UUID(kept["order"]["order_id"])
        await db.execute(update(Payment).where(Payment.order_id == kept_order).values(captured_at=paid_at))
    seats = (await me.get(f"/api/courses/{second['id']}"))["seats_left"]

    refused = await api.delete(f"/api/enrollments/{kept['enrollment_id']}", headers=me.headers)

    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/refund-window-closed")
    assert "within 7 days of payment" in refused.json()["detail"]
    status = await me.get(f"/api/enrollments/{kept['enrollment_id']}/status")
    assert (status["status"], status["saga"]["state"]) == ("confirmed", "confirmed")
    assert (await me.get(f"/api/courses/{second['id']}"))["seats_left"] == seats
    assert (await me.get(f"/api/payments/orders/{kept['order']['order_id']}"))["status"] == "paid"
    assert len(await _rows(platform, Refund)) == 1
