"""A student's sign-up, sign-in, profile and token refresh are served from SQLAlchemy's compiled
cache after the first student's (tests/sql_cache.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.services.users.conftest import UsersApi
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_student_s_account_compiles_no_statement(users: UsersApi) -> None:
    for _ in range(2):  # the first student's requests compile what the path needs
        email = f"asha.{uuid.uuid4().hex[:8]}@example.com"
        with compiled_in_this_task(users.app.state.kit.db.engine.sync_engine) as compiled:
            tokens = await users.signed_in(email)
            profile = await users.client.get("/users/profile", headers=users.bearer(tokens))
            refreshed = await users.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert profile.json()["email"] == email and refreshed.status_code == 200, refreshed.text
    assert compiled == []
