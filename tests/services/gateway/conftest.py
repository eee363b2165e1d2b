from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.kit.auth import TokenIssuer
from services.kit.http import AsgiTransport
from tests.apps import real_servers, running


@dataclass
class FakeUpstream:
    """Stands for a service (or the monolith): answers with what it received."""

    side: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def answer(path: str, request: Request) -> dict[str, Any]:
            if self.delay:
                await asyncio.sleep(self.delay)
            call = {
                "path": "/" + path,
                "query": request.url.query,
                "user": request.headers.get("x-user-id"),
                "role": request.headers.get("x-user-role"),
                "body": (await request.body()).decode(),
            }
            self.calls.append(call)
            return {"side": self.side, **call}

        return app


@dataclass
class GatewayApi:
    client: httpx.AsyncClient
    app: FastAPI
    settings: GatewaySettings
    service: FakeUpstream
    monolith: FakeUpstream

    def token(self, role: str = "student", user_id: uuid.UUID | None = None) -> dict[str, str]:
        token = TokenIssuer(self.settings).issue(user_id=user_id or uuid.uuid4(), role=role, session_id=None)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Builds gateways on the real PostgreSQL and Redis in front of fake upstreams."""
    stack: list[Any] = []

    async def build(with_monolith: bool = True, **overrides: Any) -> GatewayApi:
        service, monolith = FakeUpstream("service"), FakeUpstream("monolith")
        service_app, monolith_app = service.app(), monolith.app()
        settings = GatewaySettings(**{**real_servers(pg_schema, redis_prefix, tmp_path), **overrides})
        transports = {name: AsgiTransport(lambda: service_app) for name in settings.upstreams}
        monolith_transport = AsgiTransport(lambda: monolith_app) if with_monolith else None
        app = create_app(settings, transports=transports, monolith=monolith_transport)
        context = running(app)
        client = await context.__aenter__()
        stack.append(context)
        return GatewayApi(client, app, settings, service, monolith)

    yield build
    for context in reversed(stack):
        await context.__aexit__(None, None, None)
