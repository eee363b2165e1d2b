from __future__ import annotations

import email
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import func, select

from services.communication import repository
from services.communication.app import create_app
from services.communication.dispatcher import Dispatcher
from services.communication.models import CommunicationBase, Message
from services.communication.providers import SandboxProvider
from services.communication.settings import CommunicationSettings
from services.communication.webhooks import SIGNATURE_HEADER, sign
from services.contracts.events import AssessmentCompleted, UserRegistered
from services.kit.app import ServiceKit
from services.kit.auth import Role, TokenIssuer
from services.kit.events import Event
from services.kit.time import utcnow
from tests.apps import embedded, real_servers, running
from tests.conftest import free_port

PROBLEM = "application/problem+json"


class SmtpInbox:
    """What a real SMTP server, listening on a local port for the test, received."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.received.append(email.message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    # The test's own mail server logs every recipient; it stands for the outside world, not our logs.
    server_log = logging.getLogger("mail.log")
    level = server_log.level
    server_log.setLevel(logging.WARNING)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()
        server_log.setLevel(level)


def event(type_: str, data: dict[str, Any], event_id: uuid.UUID | None = None) -> Event:
    return Event(id=event_id or uuid.uuid4(), type=type_, source="tests", occurred_at=utcnow(), data=data)


def scored_test(user_id: uuid.UUID, completed_at: datetime, *, topic: str = "ecology", score: float = 9) -> Event:
    """assessment.completed for a student's test of ten questions (by default ecology, 9 of 10)."""
    completed = AssessmentCompleted(
        result_id=uuid.uuid4(),
        attempt_id=uuid.uuid4(),
        user_id=user_id,
        topic=topic,
        score=score,
        max_score=10,
        percentage=score * 10,
        correct_count=int(score),
        completed_at=completed_at,
    )
    return event("assessment.completed", completed.data())


class CommunicationApi:
    """A client for the communication API with the app, its dispatcher and its sandboxes beside it."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: CommunicationSettings) -> None:
        self.client = client
        self.app = app
        self.settings = settings
        self.issuer = TokenIssuer(settings)
        _, self.admin = self.caller("admin")

    @property
    def kit(self) -> ServiceKit:
        kit: ServiceKit = self.app.state.kit
        return kit

    @property
    def dispatcher(self) -> Dispatcher:
        dispatcher: Dispatcher = self.app.state.dispatcher
        return dispatcher

    def sandbox(self, channel: str) -> SandboxProvider:
        provider = self.app.state.communication.providers[channel]
        assert isinstance(provider, SandboxProvider)
        return provider

    def caller(self, role: Role = "student", user_id: uuid.UUID | None = None) -> tuple[uuid.UUID, dict[str, str]]:
        """A user id and the headers of a caller with that role."""
        user_id = user_id or uuid.uuid4()
        token = self.issuer.issue(user_id=user_id, role=role, session_id="s")
        return user_id, {"Authorization": f"Bearer {token}"}

    async def deliver(self, *events: Event) -> list[str | None]:
        consumer = self.kit.consumer
        assert consumer is not None
        return await consumer.handle_batch(list(events))

    async def register(
        self, *, email_address: str | None = None, phone: str | None = None, name: str = "Asha Rao"
    ) -> tuple[uuid.UUID, str]:
        """A student the service learned of from ``user.registered`` (which also queues their welcome)."""
        user_id = uuid.uuid4()
        address = email_address or f"asha.{user_id.hex[:8]}@example.com"
        data = UserRegistered(user_id=user_id, email=address, full_name=name).data()
        if phone:
            data["phone"] = phone
        assert await self.deliver(event("user.registered", data)) == [None]
        return user_id, address

    async def known(self, *, name: str | None = "Asha Rao", email_address: str | None = None) -> uuid.UUID:
        """A user whose contact copy the service holds (as user.registered leaves it), with no welcome queued."""
        user_id = uuid.uuid4()
        async with self.kit.db.session_scope() as db:
            await repository.save_contact(db=db, user_id=user_id, email=email_address, phone=None, name=name)
        return user_id

    async def notify(
        self, user_id: uuid.UUID, template: str, variables: dict[str, Any], **extra: Any
    ) -> httpx.Response:
        body = {"user_id": str(user_id), "template": template, "variables": variables, **extra}
        return await self.client.post("/notifications/send", json=body, headers=self.admin)

    async def dispatch(self, **kw: Any) -> int:
        return await self.dispatcher.dispatch_once(**kw)

    async def message(self, message_id: str | uuid.UUID) -> Message:
        async with self.kit.db.session_scope() as db:
            found = await db.get(Message, uuid.UUID(str(message_id)))
            assert found is not None
            return found

    async def messages(self, user_id: uuid.UUID) -> list[Message]:
        async with self.kit.db.session_scope() as db:
            rows = await db.execute(select(Message).where(Message.user_id == user_id).order_by(Message.created_at))
            return list(rows.scalars())

    async def count(self, model: type[CommunicationBase]) -> int:
        async with self.kit.db.session_scope() as db:
            return int((await db.execute(select(func.count()).select_from(model))).scalar_one())

    async def webhook(self, provider: str, payload: dict[str, Any], *, inbound: bool = False) -> httpx.Response:
        body = orjson.dumps(payload)
        secret = self.app.state.communication.webhook_secrets[provider]
        headers = {SIGNATURE_HEADER: sign(secret, body, int(time.time())), "Content-Type": "application/json"}
        path = f"/communication/webhooks/{provider}" + ("/inbound" if inbound else "")
        return await self.client.post(path, content=body, headers=headers)


def settings_for(pg_schema: str, redis_prefix: str, tmp_path: Path, **extra: Any) -> CommunicationSettings:
    base = real_servers(pg_schema, redis_prefix, tmp_path)
    return CommunicationSettings(
        **{**base, "dispatcher_enabled": False, "retry_backoff_seconds": 10.0, "max_attempts": 3, **extra}
    )


@pytest.fixture
async def comms(
    pg_schema: str, redis_prefix: str, tmp_path: Path, smtp: tuple[SmtpInbox, int]
) -> AsyncIterator[CommunicationApi]:
    """The service on the real PostgreSQL and Redis, emailing a real local SMTP server; the dispatcher
    is driven by the test (``dispatch()``), WhatsApp and SMS go to the sandboxes."""
    settings = settings_for(pg_schema, redis_prefix, tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp[1]}")
    app = create_app(settings)
    async with running(app) as client:
        yield CommunicationApi(client, app, settings)


@pytest.fixture
def inbox(smtp: tuple[SmtpInbox, int]) -> SmtpInbox:
    return smtp[0]


@pytest.fixture
async def embedded_comms(tmp_path: Path) -> AsyncIterator[CommunicationApi]:
    """The service as `cerebrum up` runs it: SQLite, the Redis stand-in, every channel in the sandbox."""
    settings = CommunicationSettings(
        **{**embedded(tmp_path), "redis_key_prefix": f"emb-{uuid.uuid4().hex[:8]}:", "dispatcher_enabled": False}
    )
    app = create_app(settings)
    async with running(app) as client:
        yield CommunicationApi(client, app, settings)
