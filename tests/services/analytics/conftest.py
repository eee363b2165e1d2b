from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.analytics.app import create_app
from services.analytics.models import EVENTS
from services.analytics.service import AnalyticsContext
from services.analytics.settings import AnalyticsSettings
from services.contracts.events import Payload
from services.kit.auth import TokenIssuer
from services.kit.events import Event
from services.kit.time import utcnow
from tests.apps import embedded, real_servers, running

PROBLEM = "application/problem+json"
# The background aggregator runs once at startup and then rarely: tests fold explicitly.
QUIET = {"aggregator_interval_seconds": 3600, "live_interval_seconds": 1}


def learning_event(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A valid client event; each call gets its own event id."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "user_id": str(user_id),
        "type": "lesson_viewed",
        "occurred_at": utcnow().isoformat(),
        "course_id": str(uuid.uuid4()),
        "lesson_id": str(uuid.uuid4()),
        "properties": {"seconds": 30, "page": "/genetics/mendel"},
    }
    event.update(overrides)
    return event


class AnalyticsApi:
    """A client for the analytics API with the app beside it, tokens for an admin and two students."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: AnalyticsSettings) -> None:
        self.client = client
        self.app = app
        issuer = TokenIssuer(settings)
        self.student_id, self.other_id = uuid.uuid4(), uuid.uuid4()
        self.admin = self._bearer(issuer.issue(user_id=uuid.uuid4(), role="admin", session_id="s"))
        self.student = self._bearer(issuer.issue(user_id=self.student_id, role="student", session_id="s"))
        self.other = self._bearer(issuer.issue(user_id=self.other_id, role="student", session_id="s"))

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def ctx(self) -> AnalyticsContext:
        ctx: AnalyticsContext = self.app.state.analytics
        return ctx

    async def send(self, events: list[dict[str, Any]], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/analytics/events", json={"events": events}, headers=headers or self.admin)

    async def fold(self) -> int:
        """Runs the aggregator until everything stored so far is in the aggregates."""
        return await self.ctx.aggregator.run_once()

    async def deliver(self, *events: Event) -> None:
        outcomes = await self.app.state.kit.consumer.handle_batch(list(events))
        assert outcomes == [None] * len(events)

    async def dashboard(self, user_id: uuid.UUID | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/analytics/dashboard/{user_id or self.student_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def stored_events(self) -> int:
        async with self.app.state.kit.db.session_scope() as db:
            return int((await db.execute(select(func.count()).select_from(EVENTS))).scalar_one())


def consumed(
    event_type: str, payload: Payload, *, at: datetime | None = None, event_id: uuid.UUID | None = None
) -> Event:
    """An event from another service as the broker hands it over (JSON data)."""
    return Event(
        id=event_id or uuid.uuid4(),
        type=event_type,
        source="test",
        occurred_at=at or utcnow(),
        data=payload.data(),
    )


def pg_settings(pg_schema: str, redis_prefix: str, tmp_path: Path, **extra: Any) -> AnalyticsSettings:
    return AnalyticsSettings(**{**real_servers(pg_schema, redis_prefix, tmp_path), **QUIET, **extra})


@pytest.fixture
async def analytics(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[AnalyticsApi]:
    """The analytics service on the real PostgreSQL and Redis."""
    settings = pg_settings(pg_schema, redis_prefix, tmp_path)
    app = create_app(settings)
    async with running(app) as client:
        yield AnalyticsApi(client, app, settings)


@pytest.fixture
async def embedded_analytics(tmp_path: Path) -> AsyncIterator[AnalyticsApi]:
    """The analytics service as `cerebrum up` runs it: SQLite and the Redis stand-in."""
    settings = AnalyticsSettings(
        **{**embedded(tmp_path), **QUIET, "redis_key_prefix": f"test:{uuid.uuid4().hex[:12]}:"}
    )
    app = create_app(settings)
    async with running(app) as client:
        yield AnalyticsApi(client, app, settings)
