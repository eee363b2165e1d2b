"""One student's life at the academy, as every service learns of it, on the real servers.

Enrol and pay (the enrolment shows its order paid as soon as it is confirmed), finish every lesson
(congratulated), add a phone and a new name (WhatsApp by user id reaches them, messages greet the
new name), give the place up within the refund window (refunded, credit note, audit row, message),
keep a place paid for too long ago (the cancel is refused and nothing changes), then delete the
account: the unpaid enrolment's seat comes back at once, and no table of any service keeps the
person's name, e-mail or phone.

The ``academy`` fixture runs every service in this process on a PostgreSQL database of this test's
own (one schema per service, as the distributed run lays them out), a RabbitMQ vhost that every
event crosses, and a Redis key prefix of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update

from cerebrum.platform import Platform
from cerebrum.registry import SERVICES
from services.courses.demo import seed_catalogue
from services.payments.models import AuditEntry, CreditNote, Payment, Refund

pytestmark = pytest.mark.integration

NAME = "Meera Krishnan"
PERSON = {"email": "meera.krishnan@example.com", "password": "Golgi-Apparatus-7", "full_name": NAME}
PHONE = "+919812345678"
NEW_NAME = "Meera Iyer"
# Every form the person could be kept in: both names and their parts, the address, the phone's
# national number (with or without the country code).
NEEDLES = [PERSON["email"], NAME, NEW_NAME, "meera", "krishnan", PHONE[-10:]]


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f}s"
        await asyncio.sleep(0.2)
    return found


async def scan(dsn: str, needles: list[str]) -> tuple[set[str], list[str]]:
    """Every row of every table (plain, partition or materialised view) in every schema of the
    database, read whole as text so that no column of any type is passed over: the schemas read,
    and the tables where a needle stands."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%'"
        )
        patterns = [f"%{needle.lower()}%" for needle in needles]
        found = []
        for schema, table in tables:
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}"."{table}" AS t WHERE lower(t::text) LIKE ANY($1::text[])', patterns
            )
            if hits:
                found.append(f"{schema}.{table} ({hits})")
        return {row["nspname"] for row in tables}, found
    finally:
        await conn.close()


class Student:
    def __init__(self, api: httpx.AsyncClient, user_id: str, headers: dict[str, str]) -> None:
        self.api, self.user_id, self.headers = api, user_id, headers

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.api.get(path, headers=self.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def enrol(self, course: dict[str, Any]) -> dict[str, Any]:
        started = await self.api.post("/api/enrollments", json={"course_id": course["id"]}, headers=self.headers)
        assert started.status_code == 201, started.text
        return dict(started.json())

    async def paid_place(self, course: dict[str, Any]) -> dict[str, Any]:
        """Enrols in a course, pays through the sandbox checkout and waits for the confirmation,
        which shows the order paid in the same read."""
        enrollment = await self.enrol(course)
        checkout = await self.api.post(
            "/api/payments/sandbox/checkout",
            json={"order_id": enrollment["order"]["order_id"], "outcome": "success"},
            headers=self.headers,
        )
        verify = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        assert (await self.api.post("/api/payments/verify", json=verify, headers=self.headers)).status_code == 200
        assert (await self.get(f"/api/payments/orders/{enrollment['order']['order_id']}"))["status"] == "paid"

        async def confirmed() -> dict[str, Any] | None:
            status = await self.get(f"/api/enrollments/{enrollment['enrollment_id']}/status")
            return status if status["status"] == "confirmed" else None

        status = await _until(confirmed, "the payment confirming the enrolment")
        assert status["order"]["status"] == "paid", "a confirmed enrolment never shows its order unpaid"
        return enrollment

    async def messages(self, template: str) -> dict[str, dict[str, Any]]:
        page = await self.get(f"/api/notifications/{self.user_id}", limit=100)
        return {m["channel"]: m for m in page["items"] if m["template"] == template}

    async def told(self, template: str, what: str) -> dict[str, dict[str, Any]]:
        """Waits for a message sent by e-mail and in-app; returns it by channel."""

        async def both() -> dict[str, dict[str, Any]]:
            found = await self.messages(template)
            return found if set(found) == {"email", "in_app"} else {}

        found: dict[str, dict[str, Any]] = await _until(both, what)
        return found

    async def seats_left(self, course: dict[str, Any]) -> int:
        """As anyone browsing the catalogue sees it (the student's token ends with the account)."""
        return int((await self.api.get(f"/api/courses/{course['id']}")).json()["seats_left"])


async def _rows(platform: Platform, model: Any, **where: Any) -> list[Any]:
    async with platform.apps["payments"].state.kit.db.session_scope() as db:
        return list((await db.execute(select(model).filter_by(**where))).scalars())


async def test_one_student_enrols_pays_finishes_changes_is_refunded_and_is_forgotten(
    academy: tuple[Platform, httpx.AsyncClient],
) -> None:
    platform, api = academy
    dsn = platform.apps["users"].state.kit.settings.database_url
    async with platform.apps["courses"].state.kit.db.session_scope() as db:
        await seed_catalogue(db=db)
    issuer = platform.apps["users"].state.auth.issuer
    admin = {"Authorization": f"Bearer {issuer.issue(user_id=uuid.uuid4(), role='admin', session_id=None)}"}
    registered = await api.post("/api/auth/register", json=PERSON)
    assert registered.status_code == 201, registered.text
    login = await api.post("/api/auth/login", json={k: PERSON[k] for k in ("email", "password")})
    me = Student(api, registered.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"})
    listed = (await me.get("/api/courses"))["items"]
    finished, kept, pending_course = [await me.get(f"/api/courses/{c['id']}") for c in listed[:3]]

    # Enrol, pay and finish every lesson: the course is complete, and the student hears of it.
    place = await me.paid_place(finished)
    progress = [
        await api.put(
            f"/api/enrollments/{place['enrollment_id']}/progress",
            json={"lesson_id": lesson["id"], "completed": True, "time_spent_seconds": 300},
            headers=me.headers,
        )
        for lesson in finished["lessons"]
    ]
    assert [r.status_code for r in progress] == [200] * len(finished["lessons"])
    assert progress[-1].json()["course_completed"] is True
    congratulated = await me.told("course_completion", "the completion message on email and in-app")
    assert congratulated["email"]["subject"] == f"You completed {finished['title']}"
    assert f"Hi {NAME}" in congratulated["email"]["body"]
    assert congratulated["in_app"]["body"] == f"Congratulations, {NAME}: you completed {finished['title']}!"

    # A phone and a new name after sign-up (one user.updated): WhatsApp by user id reaches them.
    async def whatsapp() -> httpx.Response:
        body = {"user_id": me.user_id, "body": "Your biology class starts at 5 pm"}
        return await api.post("/api/whatsapp/send-message", json=body, headers=admin)

    assert (await whatsapp()).status_code == 422, "no phone is known yet"
    changed = await api.put("/api/users/profile", json={"phone": PHONE, "full_name": NEW_NAME}, headers=me.headers)
    assert changed.status_code == 200, changed.text

    async def accepted() -> httpx.Response | None:
        response = await whatsapp()
        return response if response.status_code == 202 else None

    sent = await _until(accepted, "WhatsApp by user id once the phone is known")
    assert sent.json()["messages"][0]["channel"] == "whatsapp"

    # Giving the finished place up within the window: refunded, credit note, audit row, seat back,
    # and a message that greets the new name.
    seats = await me.seats_left(finished)
    cancelled = await api.delete(f"/api/enrollments/{place['enrollment_id']}", headers=me.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    order_id = place["order"]["order_id"]
    assert (await me.get(f"/api/payments/orders/{order_id}"))["status"] == "refunded"
    assert await me.seats_left(finished) == seats + 1
    (refund,) = await _rows(platform, Refund, order_id=uuid.UUID(order_id))
    assert refund.amount_paise == finished["price_paise"]
    (note,) = await _rows(platform, CreditNote, refund_id=refund.id)
    assert note.total_paise == finished["price_paise"] and "/CN/" in note.number
    assert [a.outcome for a in await _rows(platform, AuditEntry, action="refund")] == ["refunded"]
    refunded = await me.told("refund_confirmation", "the refund message")
    assert note.number in refunded["email"]["body"] and note.number in refunded["in_app"]["body"]
    assert f"Hi {NEW_NAME}" in refunded["email"]["body"]

    async def order_refunded() -> bool:
        status = await me.get(f"/api/enrollments/{place['enrollment_id']}/status")
        return bool(status["order"]["status"] == "refunded")

    await _until(order_refunded, "the enrolment's order shown refunded")

    # A place paid for eight days ago is past the window: refused, and everything stays as it was.
    kept_place = await me.paid_place(kept)
    async with platform.apps["payments"].state.kit.db.session_scope() as db:
        paid_at = datetime.now(UTC) - timedelta(days=8)
        kept_order = uuid.UUID(kept_place["order"]["order_id"])
        await db.execute(update(Payment).where(Payment.order_id == kept_order).values(captured_at=paid_at))
    seats = await me.seats_left(kept)
    refused = await api.delete(f"/api/enrollments/{kept_place['enrollment_id']}", headers=me.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/refund-window-closed")
    assert "within 7 days of payment" in refused.json()["detail"]
    status = await me.get(f"/api/enrollments/{kept_place['enrollment_id']}/status")
    assert (status["status"], status["saga"]["state"]) == ("confirmed", "confirmed")
    assert await me.seats_left(kept) == seats
    assert (await me.get(f"/api/payments/orders/{kept_order}"))["status"] == "paid"
    assert len(await _rows(platform, Refund)) == 1

    # An unpaid enrolment holds a seat; before deletion the scan finds the person where they are kept.
    seats = await me.seats_left(pending_course)
    pending = await me.enrol(pending_course)
    assert await me.seats_left(pending_course) == seats - 1
    schemas, before = await scan(dsn, NEEDLES)
    assert set(SERVICES) | {"gateway"} <= schemas, "every service's schema is scanned"
    assert {hit.split(".")[0] for hit in before} >= {"users", "communication"}, before
    _, phone_kept = await scan(dsn, [PHONE[-10:]])
    assert {hit.split(".")[0] for hit in phone_kept} >= {"users", "communication"}, phone_kept

    # Deleting the account: the unpaid enrolment ends and its seat comes back at once ...
    assert (await api.delete("/api/users/account", headers=me.headers)).status_code == 204

    async def seat_back() -> bool:
        return await me.seats_left(pending_course) == seats

    await _until(seat_back, "the pending enrolment's seat released", timeout=15)
    status = (await api.get(f"/api/enrollments/{pending['enrollment_id']}/status", headers=admin)).json()
    assert (status["status"], status["saga"]["cancel_reason"]) == ("cancelled", "account_deleted")

    # ... no service keeps the person's name, address or phone in any table ...
    async def forgotten() -> bool:
        return not (await scan(dsn, NEEDLES))[1]

    await _until(forgotten, "every service forgetting the person")

    # ... nor answers with them, and what was paid stays.
    answers = [
        await api.get(f"/api/notifications/{me.user_id}", headers=admin, params={"limit": 100}),
        await api.get(f"/api/users/{me.user_id}", headers=admin),
        await api.get(f"/api/enrollments/{kept_place['enrollment_id']}/status", headers=admin),
    ]
    assert answers[0].json()["items"], "the messages are kept, scrubbed"
    assert not [n for a in answers for n in NEEDLES if n.lower() in a.text.lower()]
    assert answers[2].json()["status"] == "confirmed", "what was paid stays"
