"""A student's profile changes, payment and account deletion, as every service learns of them.

The embedded platform runs on the real servers: a PostgreSQL database of this test's own (one
schema per service, as the distributed run lays them out), a RabbitMQ vhost of its own that every
event crosses, and a Redis key prefix of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from cerebrum.demo import seed_academy
from cerebrum.platform import Platform
from cerebrum.registry import SERVICES
from cerebrum.runner import build_platform
from tests.apps import FAST_HASHING
from tests.conftest import PG_URL, REDIS_URL, require_server
from tests.deploy.distributed import forget_keys, rabbitmqctl

pytestmark = pytest.mark.integration

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")
PERSON = {"email": "meera.krishnan@example.com", "password": "Golgi-Apparatus-7", "full_name": "Meera Krishnan"}
PHONE = "+919812345678"
NEW_NAME = "Meera Iyer"


@pytest.fixture
async def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Platform, str]]:
    """Every service in this process, on a database, vhost and key prefix of this test's own; yields its DSN."""
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        require_server(name, port)
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    database, vhost, prefix = (
        f"t_{uuid.uuid4().hex[:12]}",
        f"test-{uuid.uuid4().hex[:10]}",
        f"test:{uuid.uuid4().hex[:8]}:",
    )
    dsn = PG_URL.rsplit("/", 1)[0] + f"/{database}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        await asyncio.to_thread(rabbitmqctl, "add_vhost", vhost)
        await asyncio.to_thread(rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        overrides = {
            "environment": "test",
            "data_dir": tmp_path,
            "database_url": dsn,
            "database_pool_size": 3,
            "redis_url": REDIS_URL,
            "redis_key_prefix": prefix,
            "rabbitmq_url": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            **FAST_HASHING,
        }
        running = build_platform(overrides=overrides)
        async with running.running():
            yield running, dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
        await asyncio.to_thread(forget_keys, prefix)


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f}s"
        await asyncio.sleep(0.2)
    return found


async def scan(dsn: str, needles: list[str]) -> tuple[set[str], list[str]]:
    """Every text and JSON column of every table in every service's schema: the schemas, and where a needle is."""
    conn = await asyncpg.connect(dsn)
    try:
        columns = await conn.fetch(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND c.data_type = ANY($1::text[]) "
            "AND c.table_schema NOT IN ('pg_catalog', 'information_schema')",
            list(TEXT_TYPES),
        )
        patterns = [f"%{needle.lower()}%" for needle in needles]
        found = []
        for schema, table, column in columns:
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE lower("{column}"::text) LIKE ANY($1::text[])',
                patterns,
            )
            if hits:
                found.append(f"{schema}.{table}.{column} ({hits})")
        return {row["table_schema"] for row in columns}, found
    finally:
        await conn.close()


async def test_profile_changes_payment_and_deletion_reach_every_service(platform: tuple[Platform, str]) -> None:
    running, dsn = platform
    await seed_academy(running.apps)
    issuer = running.apps["users"].state.auth.issuer
    admin = {"Authorization": f"Bearer {issuer.issue(user_id=uuid.uuid4(), role='admin', session_id=None)}"}
    transport = httpx.ASGITransport(app=running, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://academy") as api:
        registered = await api.post("/api/auth/register", json=PERSON)
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["id"]
        login = await api.post("/api/auth/login", json={"email": PERSON["email"], "password": PERSON["password"]})
        me = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def messages() -> list[dict[str, Any]]:
            response = await api.get(f"/api/notifications/{user_id}", headers=me, params={"limit": 50})
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        async def whatsapp() -> httpx.Response:
            body = {"user_id": user_id, "body": "Your biology class starts at 5 pm"}
            return await api.post("/api/whatsapp/send-message", json=body, headers=admin)

        await _until(lambda: _has(messages, "welcome"), "the welcome message")
        assert (await whatsapp()).status_code == 422, "no phone is known yet"

        # user.updated: a phone added after sign-up, then a new name.
        changed = await api.put("/api/users/profile", json={"phone": PHONE}, headers=me)
        assert changed.status_code == 200, changed.text
        sent = await _until(lambda: _accepted(whatsapp), "WhatsApp by user id once the phone is known")
        assert sent.json()["messages"][0]["channel"] == "whatsapp"
        assert (await api.put("/api/users/profile", json={"full_name": NEW_NAME}, headers=me)).status_code == 200

        async def greets_new_name() -> bool:
            response = await api.post(
                "/api/notifications/send",
                json={"user_id": user_id, "template": "welcome", "variables": {}, "channels": ["email"]},
                headers=admin,
            )
            assert response.status_code == 202, response.text
            return NEW_NAME in (await messages())[0]["body"]

        await _until(greets_new_name, "a message greeting the new name")

        # payment.succeeded: the enrolment shows its order paid.
        courses = (await api.get("/api/courses")).json()["items"]
        paid_course, pending_course = courses[0], courses[1]
        enrolment = await _enrol(api, me, paid_course["id"])
        checkout = await api.post(
            "/api/payments/sandbox/checkout", json={"order_id": enrolment["order"]["order_id"]}, headers=me
        )
        verify = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        assert (await api.post("/api/payments/verify", json=verify, headers=me)).status_code == 200

        async def order_paid() -> bool:
            status = await api.get(f"/api/enrollments/{enrolment['enrollment_id']}/status", headers=me)
            return status.json()["status"] == "confirmed" and status.json()["order"]["status"] == "paid"

        await _until(order_paid, "the enrolment's order shown paid")
        await _until(lambda: _has(messages, "enrolment_confirmation"), "the enrolment confirmation")
        (confirmation,) = [m for m in await messages() if m["template"] == "enrolment_confirmation"]
        assert f"Hi {NEW_NAME}" in confirmation["body"]

        # user.deleted: the unpaid enrolment ends and its seat comes back at once ...
        seats_before = await _seats_left(api, pending_course["id"])
        pending = await _enrol(api, me, pending_course["id"])
        assert await _seats_left(api, pending_course["id"]) == seats_before - 1
        needles = [PERSON["email"], PERSON["full_name"], NEW_NAME, PHONE.removeprefix("+"), "meera"]
        schemas, before = await scan(dsn, needles)
        assert set(SERVICES) | {"gateway"} <= schemas, "every service's schema is scanned"
        assert {hit.split(".")[0] for hit in before} >= {"users", "communication"}, before

        assert (await api.delete("/api/users/account", headers=me)).status_code == 204

        async def seat_back() -> bool:
            return await _seats_left(api, pending_course["id"]) == seats_before

        await _until(seat_back, "the pending enrolment's seat released", timeout=15)
        status = await api.get(f"/api/enrollments/{pending['enrollment_id']}/status", headers=admin)
        assert (status.json()["status"], status.json()["saga"]["cancel_reason"]) == ("cancelled", "account_deleted")

        # ... and no service keeps the person's name, address or phone in any text column.
        async def forgotten() -> bool:
            return not (await scan(dsn, needles))[1]

        await _until(forgotten, "every service forgetting the person")
        paid = await api.get(f"/api/enrollments/{enrolment['enrollment_id']}/status", headers=admin)
        assert paid.json()["status"] == "confirmed", "what was paid stays"


async def _has(messages: Callable[[], Awaitable[list[dict[str, Any]]]], template: str) -> bool:
    return any(m["template"] == template for m in await messages())


async def _accepted(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
    response = await send()
    return response if response.status_code == 202 else None


async def _enrol(api: httpx.AsyncClient, headers: dict[str, str], course_id: str) -> dict[str, Any]:
    response = await api.post("/api/enrollments", json={"course_id": course_id}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _seats_left(api: httpx.AsyncClient, course_id: str) -> int:
    return int((await api.get(f"/api/courses/{course_id}")).json()["seats_left"])
