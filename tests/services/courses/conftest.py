from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.contracts.events import EnrollmentCancelled, EnrollmentCompleted, EnrollmentConfirmed, Payload
from services.courses.app import create_app
from services.courses.models import OUTBOX
from services.courses.settings import CoursesSettings
from services.kit.auth import TokenIssuer
from services.kit.events import Event
from services.kit.time import utcnow
from tests.apps import embedded, real_servers, running

PROBLEM = "application/problem+json"


def enrolment_event(type_: str, *, enrollment_id: uuid.UUID, user_id: uuid.UUID, course_id: str | uuid.UUID) -> Event:
    """An enrolment event as the enrollments service publishes it."""
    course = uuid.UUID(str(course_id))
    payload: Payload
    if type_ == "enrollment.confirmed":
        payload = EnrollmentConfirmed(
            enrollment_id=enrollment_id,
            user_id=user_id,
            course_id=course,
            course_title="Genetics",
            amount_paise=1999900,
            confirmed_at=utcnow(),
        )
    elif type_ == "enrollment.completed":
        payload = EnrollmentCompleted(
            enrollment_id=enrollment_id, user_id=user_id, course_id=course, completed_at=utcnow()
        )
    else:
        payload = EnrollmentCancelled(
            enrollment_id=enrollment_id, user_id=user_id, course_id=course, reason="student_cancelled"
        )
    return Event(id=uuid.uuid4(), type=type_, source="tests", occurred_at=utcnow(), data=payload.data())


def course_body(**overrides: Any) -> dict[str, Any]:
    """A valid new course; each call gets its own slug."""
    body: dict[str, Any] = {
        "slug": f"genetics-{uuid.uuid4().hex[:8]}",
        "title": "Genetics and Evolution",
        "description": "Mendelian inheritance and the molecular basis of inheritance for NEET.",
        "subject": "biology",
        "grade": "12",
        "price_paise": 1999900,
        "capacity": 50,
        "is_published": True,
        "lessons": [
            {"title": "Mendel's Laws of Inheritance", "duration_minutes": 55},
            {"title": "DNA Replication and Transcription", "duration_minutes": 60, "summary": "Meselson and Stahl."},
            {"title": "Hardy-Weinberg Principle", "duration_minutes": 45},
        ],
    }
    body.update(overrides)
    return body


class CoursesApi:
    """A client for the courses API with the app beside it, and tokens for an admin and a student."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: CoursesSettings) -> None:
        self.client = client
        self.app = app
        self.issuer = TokenIssuer(settings)
        self.admin = self._bearer(self.issuer.issue(user_id=uuid.uuid4(), role="admin", session_id="s"))
        self.student_id = uuid.uuid4()
        self.student = self.student_of(self.student_id)

    def student_of(self, user_id: uuid.UUID) -> dict[str, str]:
        """The headers of a student with this id."""
        return self._bearer(self.issuer.issue(user_id=user_id, role="student", session_id="s"))

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def create(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post("/courses", json=course_body(**overrides), headers=self.admin)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def deliver(self, *events: Event) -> None:
        """Hands events to the service's consumer as the bus would."""
        errors = await self.app.state.kit.consumer.handle_batch(list(events))
        assert errors == [None] * len(events), errors

    async def outbox(self) -> list[RecordedEvent]:
        async with self.app.state.kit.db.session_scope() as db:
            rows = await db.execute(select(OUTBOX).order_by(OUTBOX.c.created_at))
            return [RecordedEvent(row.event_type, row.payload["data"]) for row in rows]


class RecordedEvent(NamedTuple):
    type: str
    payload: dict[str, Any]


def pg_settings(pg_schema: str, redis_prefix: str, tmp_path: Path, **extra: Any) -> CoursesSettings:
    return CoursesSettings(
        **{
            **real_servers(pg_schema, redis_prefix, tmp_path),
            "database_pool_size": 20,
            "database_pool_timeout": 120,
            **extra,
        }
    )


@pytest.fixture
async def courses(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[CoursesApi]:
    """The courses service on the real PostgreSQL and Redis."""
    settings = pg_settings(pg_schema, redis_prefix, tmp_path)
    app = create_app(settings)
    async with running(app) as client:
        yield CoursesApi(client, app, settings)


@pytest.fixture
async def embedded_courses(tmp_path: Path) -> AsyncIterator[CoursesApi]:
    """The courses service as `cerebrum up` runs it: SQLite (FTS5) and the Redis stand-in."""
    settings = CoursesSettings(**{**embedded(tmp_path), "redis_key_prefix": f"test:{uuid.uuid4().hex[:12]}:"})
    app = create_app(settings)
    async with running(app) as client:
        yield CoursesApi(client, app, settings)
