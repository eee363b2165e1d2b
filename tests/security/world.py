"""The academy the security tests attack: the embedded platform, accounts, and each student's records.

Every record is made through the public API (register, log in, enrol, pay, test, notify, track),
so that what the tests then refuse is exactly what a real student would own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from fastapi import FastAPI

from cerebrum.demo import create_account, seed_academy
from cerebrum.platform import Platform
from services.kit.auth import TokenIssuer
from services.users.settings import UsersSettings
from tests.security.embedded import bearer

UNPUBLISHED = sqlalchemy.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
STUDENT_PASSWORD = "Photosynthesis-Light-42"
ADMIN_PASSWORD = "Chloroplast-Admin-77"


@dataclass
class Account:
    user_id: uuid.UUID
    email: str
    password: str
    role: str
    access: str = ""
    refresh: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access)


@dataclass
class Records:
    """One student's records, each made through the API."""

    enrollment_id: str = ""
    course_id: str = ""
    paid_order_id: str = ""
    open_order_id: str = ""
    invoice_id: str = ""
    checkout: dict[str, Any] = field(default_factory=dict)
    method_id: str = ""
    subscription_id: str = ""
    result_id: str = ""
    analytics_event_id: str = ""
    city: str = ""


async def until(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Polls check until it returns something truthy; fails after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def expect(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, f"{response.request.method} {response.request.url.path}: {response.text}"
    return response.json() if response.content else {}


class Academy:
    """A running platform with helpers that act through its API."""

    def __init__(self, platform: Platform, client: httpx.AsyncClient, data_dir: Path) -> None:
        self.platform = platform
        self.http = client
        self.data_dir = data_dir
        self.issuer = TokenIssuer(UsersSettings(data_dir=data_dir))
        self.accounts: dict[str, Account] = {}
        self.records: dict[str, Records] = {}
        self.course_ids: list[str] = []
        self.lesson_ids: dict[str, list[str]] = {}
        self.file_id = ""
        self.question_id = ""
        self._serial = 0

    @property
    def apps(self) -> dict[str, FastAPI]:
        return self.platform.apps

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    async def register(self, name: str, *, role: str = "student") -> Account:
        """A new account (a student through the API; an admin through the users service's own rules)."""
        email = f"{name}.{uuid.uuid4().hex[:8]}@example.com"
        password = ADMIN_PASSWORD if role == "admin" else STUDENT_PASSWORD
        if role == "admin":
            await create_account(self.apps["users"], email=email, password=password, full_name=name, role="admin")
            tokens = expect(await self.http.post("/auth/login", json={"email": email, "password": password}), 200)
            profile = await self.http.get("/users/profile", headers=bearer(tokens["access_token"]))
            user_id = uuid.UUID(expect(profile, 200)["id"])
        else:
            body = {"email": email, "password": password, "full_name": name.title(), "grade": "12"}
            user_id = uuid.UUID(expect(await self.http.post("/auth/register", json=body), 201)["id"])
        account = Account(user_id=user_id, email=email, password=password, role=role)
        await self.login(account)
        self.accounts[name] = account
        return account

    async def login(self, account: Account) -> Account:
        body = {"email": account.email, "password": account.password}
        tokens = expect(await self.http.post("/auth/login", json=body), 200)
        account.access, account.refresh = tokens["access_token"], tokens["refresh_token"]
        return account

    async def fresh_session(self, account: Account) -> Account:
        """Another session of the same account (its own access and refresh tokens)."""
        return await self.login(Account(account.user_id, account.email, account.password, account.role))

    async def new_course(self, *, price_paise: int = 49_900, published: bool = True) -> str:
        """A course made by an admin, with two lessons and plenty of seats."""
        n = self.serial()
        body = {
            "slug": f"security-course-{n}-{uuid.uuid4().hex[:6]}",
            "title": f"Security course {n}",
            "description": "Cell biology for the security suite",
            "subject": "biology",
            "grade": "12",
            "price_paise": price_paise,
            "capacity": 1000,
            "is_published": published,
            "lessons": [
                {"title": "Membranes", "duration_minutes": 30},
                {"title": "Transport", "duration_minutes": 25},
            ],
        }
        course = expect(await self.http.post("/courses", json=body, headers=self.accounts["admin"].headers), 201)
        self.course_ids.append(course["id"])
        self.lesson_ids[course["id"]] = [lesson["id"] for lesson in course["lessons"]]
        return str(course["id"])

    async def enrol(self, account: Account, course_id: str | None = None) -> dict[str, Any]:
        """Starts an enrolment (the saga holds a seat and opens the payment order)."""
        course_id = course_id or await self.new_course()
        started = expect(
            await self.http.post("/enrollments", json={"course_id": course_id}, headers=account.headers), 201
        )
        return {**started, "course_id": course_id}

    async def pay(self, account: Account, order_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pays an order through the sandbox checkout and the browser's verification."""
        checkout = expect(
            await self.http.post(
                "/payments/sandbox/checkout",
                json={"order_id": order_id, "outcome": "success"},
                headers=account.headers,
            ),
            200,
        )
        verify = {k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        paid = expect(await self.http.post("/payments/verify", json=verify, headers=account.headers), 200)
        return checkout, paid

    async def open_order(self, account: Account, *, amount_paise: int = 19_900) -> str:
        order = expect(
            await self.http.post(
                "/payments/create-order",
                json={"user_id": str(account.user_id), "amount_paise": amount_paise, "description": "Notes bundle"},
                headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex},
            ),
            201,
        )
        return str(order["order_id"])

    async def subscribe(self, account: Account) -> str:
        body = {"plan": "neet-monthly"}
        created = expect(
            await self.http.post(
                "/subscriptions/create", json=body, headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex}
            ),
            201,
        )
        return str(created["subscription_id"])

    async def take_test(self, account: Account) -> str:
        attempt = str(uuid.uuid4())
        drawn = expect(
            await self.http.get(
                "/questions/random",
                params={"topic": "genetics", "count": 3, "attempt_id": attempt},
                headers=account.headers,
            ),
            200,
        )
        answers = [
            {"question_id": q["id"], "choice": 0} if q["kind"] == "mcq" else {"question_id": q["id"], "text": "alleles"}
            for q in drawn["questions"]
        ]
        self.question_id = self.question_id or str(drawn["questions"][0]["id"])
        body = {"attempt_id": attempt, "topic": "genetics", "answers": answers, "duration_seconds": 120}
        result = expect(await self.http.post("/assessments/submit", json=body, headers=account.headers), 201)
        return str(result["id"])

    def learning_event(self, user_id: uuid.UUID) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "user_id": str(user_id),
            "type": "lesson_viewed",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "course_id": self.course_ids[0] if self.course_ids else None,
            "properties": {"seconds": 30},
        }

    async def upload_file(self, course_id: str) -> str:
        lesson_id = self.lesson_ids[course_id][0]
        uploaded = expect(
            await self.http.post(
                f"/courses/{course_id}/lessons/{lesson_id}/files",
                content=b"%PDF-1.4 mitochondria notes",
                headers={
                    **self.accounts["admin"].headers,
                    "Content-Type": "application/pdf",
                    "X-Filename": "notes.pdf",
                },
            ),
            201,
        )
        return str(uploaded["id"])

    async def notifications(self, account: Account, owner: Account | None = None) -> list[dict[str, Any]]:
        owner = owner or account
        page = expect(await self.http.get(f"/notifications/{owner.user_id}", headers=account.headers), 200)
        return list(page["items"])

    async def delivered(self, timeout: float = 10.0) -> None:
        """Waits until every event recorded so far has been relayed, and so handled by its consumers."""

        async def unpublished() -> int:
            count = 0
            for name in self.apps:
                async with self.platform.kit(name).db.engine.connect() as conn:
                    tables = await conn.run_sync(lambda sync: sqlalchemy.inspect(sync).get_table_names())
                    if "outbox" in tables:
                        count += (await conn.execute(UNPUBLISHED)).scalar_one()
            return count

        async def none_left() -> bool:
            return await unpublished() == 0

        await until(none_left, timeout=timeout, what="the outboxes to drain")

    async def enrolment_status(self, account: Account, enrollment_id: str) -> str:
        status = expect(await self.http.get(f"/enrollments/{enrollment_id}/status", headers=account.headers), 200)
        return str(status["status"])

    async def give_records(self, name: str) -> Records:
        """Enrols and pays, stores a payment method, subscribes, takes a test, tracks learning, edits the profile."""
        account = self.accounts[name]
        records = Records()
        course_id = self.course_ids[0]
        started = await self.enrol(account, course_id)
        records.enrollment_id, records.course_id = started["enrollment_id"], course_id
        records.paid_order_id = started["order"]["order_id"]
        records.checkout, paid = await self.pay(account, records.paid_order_id)
        records.invoice_id = paid["invoice_id"]
        assert records.invoice_id, paid
        records.open_order_id = await self.open_order(account)
        method: dict[str, Any] = {
            "kind": "card",
            "token": f"tok_{uuid.uuid4().hex[:16]}",
            "brand": "visa",
            "last4": "1111",
        }
        method |= {"expiry_month": 12, "expiry_year": 2030}
        records.method_id = expect(
            await self.http.post("/payments/methods", json=method, headers=account.headers), 201
        )["id"]
        records.subscription_id = await self.subscribe(account)
        records.result_id = await self.take_test(account)
        event = self.learning_event(account.user_id)
        expect(await self.http.post("/analytics/events", json=event, headers=account.headers), 202)
        records.analytics_event_id = event["event_id"]
        records.city = f"City of {name}"
        expect(await self.http.put("/users/profile", json={"city": records.city}, headers=account.headers), 200)
        self.records[name] = records
        return records

    async def settle_student(self, name: str) -> None:
        """Waits for the events of what the student did: a confirmed enrolment and their messages."""
        account, records = self.accounts[name], self.records[name]

        async def confirmed() -> bool:
            return await self.enrolment_status(account, records.enrollment_id) == "confirmed"

        await until(confirmed, what=f"{name}'s enrolment confirmed")

        async def messages() -> bool:
            templates = {m["template"] for m in await self.notifications(account)}
            return {"welcome", "enrolment_confirmation"} <= templates

        await until(messages, what=f"{name}'s notifications")


async def build_academy(platform: Platform, client: httpx.AsyncClient, data_dir: Path) -> Academy:
    """Seeds the catalogue and the question bank, and makes an admin and two students with their records."""
    academy = Academy(platform, client, data_dir)
    await seed_academy(platform.apps)
    await academy.register("admin", role="admin")
    await academy.register("alice")
    await academy.register("bob")
    course_id = await academy.new_course()
    academy.file_id = await academy.upload_file(course_id)
    for name in ("alice", "bob"):
        await academy.give_records(name)
    for name in ("alice", "bob"):
        await academy.settle_student(name)
    return academy
