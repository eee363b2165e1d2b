from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.users.app import create_app
from services.users.settings import UsersSettings
from tests.apps import FAST_HASHING, embedded, real_servers, running

STRONG_PASSWORD = "Mitochondria-42"


class UsersApi:
    """A client for the users API with the app beside it, for checking what was stored."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    async def register(self, email: str, password: str = STRONG_PASSWORD, **extra: Any) -> httpx.Response:
        body = {"email": email, "password": password, "full_name": "Asha Rao", **extra}
        return await self.client.post("/auth/register", json=body)

    async def login(self, email: str, password: str = STRONG_PASSWORD, **kw: Any) -> httpx.Response:
        return await self.client.post("/auth/login", json={"email": email, "password": password}, **kw)

    async def signed_in(self, email: str) -> dict[str, Any]:
        assert (await self.register(email)).status_code == 201
        response = await self.login(email)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    @staticmethod
    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
async def users(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[UsersApi]:
    """The users service on the real PostgreSQL and Redis."""
    app = create_app(UsersSettings(**real_servers(pg_schema, redis_prefix, tmp_path), **FAST_HASHING))
    async with running(app) as client:
        yield UsersApi(client, app)


@pytest.fixture
async def embedded_users(tmp_path: Path) -> AsyncIterator[UsersApi]:
    """The users service as `cerebrum up` runs it with no environment: SQLite and the Redis stand-in."""
    app = create_app(UsersSettings(**embedded(tmp_path), **FAST_HASHING))
    async with running(app) as client:
        yield UsersApi(client, app)
