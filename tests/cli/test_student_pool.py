"""`cerebrum seed students`: accounts made before a load are real students, already signed in."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cerebrum.pool import make_pool
from tests.services.users.conftest import UsersApi, users  # noqa: F401 - the users service fixture

pytestmark = pytest.mark.integration
PASSWORD = "Mitochondria-Pool-7"


async def test_pool_students_are_signed_in_and_can_log_in_again(users: UsersApi, tmp_path: Path) -> None:  # noqa: F811
    settings = users.app.state.kit.settings
    pool = await make_pool(3, password=PASSWORD, ttl_seconds=600, settings=settings)

    assert len({a["user_id"] for a in pool.accounts}) == 3
    for account in pool.accounts:
        profile = await users.client.get("/users/profile", headers={"Authorization": f"Bearer {account['token']}"})
        assert profile.status_code == 200, profile.text
        assert profile.json()["email"] == account["email"]
        assert profile.json()["role"] == "student"
    # One hash for all of them, and it is the password's: a pool student can log in as anyone would.
    again = await users.login(pool.accounts[-1]["email"], PASSWORD)
    assert again.status_code == 200, again.text
    assert (await users.login(pool.accounts[0]["email"], "Mitochondria-Wrong-7")).status_code == 401

    # A second pool does not collide with the first.
    second = await make_pool(2, password=PASSWORD, ttl_seconds=600, settings=settings)
    assert not {a["email"] for a in second.accounts} & {a["email"] for a in pool.accounts}

    path = tmp_path / "pool.json"
    pool.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds tokens and the password
    assert json.loads(path.read_text())["accounts"] == pool.accounts
