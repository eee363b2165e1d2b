from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.enrollments.app import create_app
from services.enrollments.models import OUTBOX, Enrollment, EnrollmentSagaRecord
from services.enrollments.service import EnrollmentsContext
from services.enrollments.settings import EnrollmentsSettings
from services.kit.auth import TokenIssuer, TokenVerifier
from services.kit.events import Event
from tests.apps import real_servers, running
from tests.services.enrollments.fakes import COURSES_URL, PAYMENTS_URL, USERS_URL, FakeUpstreams

PROBLEM = "application/problem+json"


class RecordedEvent(NamedTuple):
    type: str
    data: dict[str, Any]


class EnrollmentsApi:
    """The enrollments service on the real servers, its fake upstreams, and tokens to call it with."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: EnrollmentsSettings, fakes: FakeUpstreams):
        self.client, self.app, self.settings, self.fakes = client, app, settings, fakes
        self.issuer = TokenIssuer(settings)
        self.admin = self.bearer(uuid.uuid4(), "admin")

    @property
    def ctx(self) -> EnrollmentsContext:
        ctx: EnrollmentsContext = self.app.state.enrollments
        return ctx

    def bearer(self, user_id: uuid.UUID, role: str = "student") -> dict[str, str]:
        token = self.issuer.issue(user_id=user_id, role=role, session_id=None)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    def student(self) -> tuple[uuid.UUID, dict[str, str]]:
        """A student the users service knows, with a token."""
        user_id = self.fakes.add_user()
        return user_id, self.bearer(user_id)

    async def enroll(self, headers: dict[str, str], course_id: uuid.UUID) -> httpx.Response:
        return await self.client.post("/enrollments", json={"course_id": str(course_id)}, headers=headers)

    async def enrolled(self, headers: dict[str, str], course_id: uuid.UUID) -> dict[str, Any]:
        response = await self.enroll(headers, course_id)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def deliver(self, *events: Event) -> None:
        """Hands events to the service's consumer as the bus would, then lets its compensations run."""
        errors = await self.app.state.kit.consumer.handle_batch(list(events))
        assert errors == [None] * len(events), errors
        await self.ctx.recovery.idle()

    async def pay(self, started: dict[str, Any]) -> Event:
        event = self.fakes.payment_succeeded(started["order"]["order_id"])
        await self.deliver(event)
        return event

    async def status(self, enrollment_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/enrollments/{enrollment_id}/status", headers=headers or self.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def outbox(self, type_: str | None = None) -> list[RecordedEvent]:
        async with self.app.state.kit.db.session_scope() as db:
            rows = await db.execute(select(OUTBOX).order_by(OUTBOX.c.created_at))
            events = [RecordedEvent(row.event_type, row.payload["data"]) for row in rows]
        return [e for e in events if type_ is None or e.type == type_]

    async def enrollments(self) -> list[Enrollment]:
        async with self.app.state.kit.db.session_scope() as db:
            return list((await db.execute(select(Enrollment))).scalars())

    async def sagas(self) -> list[EnrollmentSagaRecord]:
        async with self.app.state.kit.db.session_scope() as db:
            return list((await db.execute(select(EnrollmentSagaRecord))).scalars())


def make_settings(pg_schema: str, redis_prefix: str, tmp_path: Path, **extra: Any) -> EnrollmentsSettings:
    return EnrollmentsSettings(
        **{
            **real_servers(pg_schema, redis_prefix, tmp_path),
            "database_pool_size": 20,
            "users_url": USERS_URL,
            "courses_url": COURSES_URL,
            "payments_url": PAYMENTS_URL,
            "call_timeout_seconds": 5.0,
            **extra,
        }
    )


ApiFactory = Callable[..., AbstractAsyncContextManager[EnrollmentsApi]]


@pytest.fixture
def make_api(pg_schema: str, redis_prefix: str, tmp_path: Path) -> ApiFactory:
    """Starts an enrollments app on this test's schema; the fakes can be shared across instances."""

    @asynccontextmanager
    async def make(fakes: FakeUpstreams | None = None, **extra: Any) -> AsyncIterator[EnrollmentsApi]:
        settings = make_settings(pg_schema, redis_prefix, tmp_path, **extra)
        fakes = fakes or FakeUpstreams(TokenVerifier(settings))
        app = create_app(settings, transport=fakes.transport())
        async with running(app) as client:
            yield EnrollmentsApi(client, app, settings, fakes)

    return make


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[EnrollmentsApi]:
    """The enrollments service on the real PostgreSQL and Redis, with fake upstreams."""
    async with make_api() as api:
        yield api
