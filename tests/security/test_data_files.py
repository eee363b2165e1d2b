"""The embedded platform's data files are its owner's alone.

The SQLite files hold password hashes, e-mail addresses and phone numbers; the keys folder holds
the JWT signing key and the payment and messaging secrets. Under the usual umask (022) everything
would be readable by every account on the machine.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.embedded import running_platform


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_databases_and_keys_are_readable_by_their_owner_only(
    _embedded_only: None, loose_umask: None, tmp_path: Path
) -> None:
    left_by_an_older_version = tmp_path / "users.db"
    left_by_an_older_version.touch(mode=0o644)
    left_by_an_older_version.chmod(0o644)
    async with running_platform(tmp_path) as (_platform, client):
        body = {"email": f"modes.{uuid.uuid4().hex[:8]}@example.com", "password": "Ribosome-Factory-31"}
        registered = await client.post("/api/auth/register", json={**body, "full_name": "Mode Check"})
        assert registered.status_code == 201, registered.text  # a write: the WAL files exist now
        databases = sorted(tmp_path.glob("*.db*"))
        keys = sorted((tmp_path / "keys").iterdir())

        names = {p.name for p in databases}
        assert {"users.db", "users.db-wal", "payments.db", "gateway.db"} <= names, names
        assert {"jwt-ed25519.pem"} <= {p.name for p in keys}, keys
        loose = {p.name: oct(mode(p)) for p in [*databases, *keys] if mode(p) != 0o600}
        assert not loose, f"readable by others: {loose}"
        assert mode(tmp_path / "keys") == 0o700
