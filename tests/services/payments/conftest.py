from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.kit.auth import TokenIssuer
from services.payments.app import create_app
from services.payments.models import OUTBOX, AuditEntry, PaymentsBase
from services.payments.providers import hmac_hex
from services.payments.settings import PaymentsSettings
from tests.apps import embedded, real_servers, running

PROBLEM = "application/problem+json"


class RecordedEvent(NamedTuple):
    type: str
    data: dict[str, Any]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class PaymentsApi:
    """A client for the payments API with the app beside it, and tokens for two students, an admin and a service."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: PaymentsSettings) -> None:
        self.client = client
        self.app = app
        self.settings = settings
        issuer = TokenIssuer(settings)
        self.student_id, self.other_id = uuid.uuid4(), uuid.uuid4()
        self.student = bearer(issuer.issue(user_id=self.student_id, role="student", session_id="s"))
        self.other = bearer(issuer.issue(user_id=self.other_id, role="student", session_id="s"))
        self.admin = bearer(issuer.issue(user_id=uuid.uuid4(), role="admin", session_id="s"))
        self.service = bearer(issuer.issue(user_id=uuid.uuid4(), role="service", session_id=None))

    def order_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": str(self.student_id),
            "enrollment_id": str(uuid.uuid4()),
            "course_id": str(uuid.uuid4()),
            "amount_paise": 1999900,
            "currency": "INR",
            "description": "NEET Biology: Genetics and Evolution",
        }
        body.update(overrides)
        return body

    async def create_order(
        self, *, key: str | None = None, as_: dict[str, str] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/payments/create-order",
            json=self.order_body(**overrides),
            headers={**(as_ or self.service), "Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def checkout(self, order_id: str, outcome: str = "success") -> dict[str, Any]:
        response = await self.client.post(
            "/payments/sandbox/checkout", json={"order_id": order_id, "outcome": outcome}, headers=self.student
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def verify(self, checkout: dict[str, Any], **changes: str) -> httpx.Response:
        body = {k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        return await self.client.post("/payments/verify", json={**body, **changes}, headers=self.student)

    async def deliver(self, webhook: dict[str, Any]) -> httpx.Response:
        """Posts a webhook exactly as the sandbox checkout says the provider would."""
        # The sandbox names the gateway's URL; this client talks to the payments service itself.
        path = webhook["url"].removeprefix("/api")
        return await self.client.post(path, content=webhook["body"].encode(), headers=webhook["headers"])

    def signed_webhook(self, event: dict[str, Any]) -> dict[str, Any]:
        """A webhook body of our own making, signed with the sandbox's webhook secret."""
        body = orjson.dumps(event)
        secret = self.app.state.payments.provider.keys.webhook_secret.get_secret_value()
        headers = {"Content-Type": "application/json", "X-Razorpay-Signature": hmac_hex(secret, body)}
        return {"url": "/payments/webhooks/razorpay", "headers": headers, "body": body.decode()}

    @staticmethod
    def reworded(webhook: dict[str, Any], **changes: Any) -> dict[str, Any]:
        event = orjson.loads(webhook["body"])
        event.update(changes)
        return event

    async def outbox(self, type_: str | None = None) -> list[RecordedEvent]:
        async with self.app.state.kit.db.session_scope() as db:
            rows = await db.execute(select(OUTBOX).order_by(OUTBOX.c.created_at))
            events = [RecordedEvent(row.event_type, row.payload["data"]) for row in rows]
        return [e for e in events if type_ is None or e.type == type_]

    async def audit(self, **where: Any) -> list[AuditEntry]:
        async with self.app.state.kit.db.session_scope() as db:
            query = select(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
            return list((await db.execute(query)).scalars())

    async def count(self, table: str) -> int:
        async with self.app.state.kit.db.session_scope() as db:
            model = PaymentsBase.metadata.tables[table]
            return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


def now_epoch() -> int:
    return int(time.time())


def pg_settings(pg_schema: str, redis_prefix: str, tmp_path: Path, **extra: Any) -> PaymentsSettings:
    return PaymentsSettings(**{**real_servers(pg_schema, redis_prefix, tmp_path), "database_pool_size": 25, **extra})


@pytest.fixture
async def payments(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[PaymentsApi]:
    """The payments service on the real PostgreSQL and Redis, with the sandbox provider."""
    settings = pg_settings(pg_schema, redis_prefix, tmp_path)
    app = create_app(settings)
    async with running(app) as client:
        yield PaymentsApi(client, app, settings)


@pytest.fixture
async def embedded_payments(tmp_path: Path) -> AsyncIterator[PaymentsApi]:
    """The payments service as `cerebrum up` runs it: SQLite and the Redis stand-in."""
    settings = PaymentsSettings(**{**embedded(tmp_path), "redis_key_prefix": f"test:{uuid.uuid4().hex[:12]}:"})
    app = create_app(settings)
    async with running(app) as client:
        yield PaymentsApi(client, app, settings)
