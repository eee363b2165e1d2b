"""A pool of student accounts made before a load, with their access tokens: `cerebrum seed students`.

A load that registers each simulated student as it arrives measures argon2 and the consumers of
``user.registered``, not students browsing. The pool is made straight in the users service's
store: every account shares one password, hashed once with the service's own argon2 settings,
rows go in a few thousand at a time, and each account gets a login session and an access token
signed with the service's key. The file written holds those tokens and the password: it is
readable only by its owner and belongs in a scratch folder, never in the repository.

The accounts are not announced on the bus (no ``user.registered``): analytics and communication
learn a pool student from the first thing they do, as they do for an account imported from the
monolith.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from cerebrum.registry import settings_for
from services.kit.app import ServiceKit
from services.kit.auth import TokenIssuer
from services.kit.settings import ServiceSettings
from services.kit.time import utcnow
from services.users.models import Session, User, UserProfile
from services.users.security import Passwords, hash_refresh_token, new_refresh_token
from services.users.settings import UsersSettings

CHUNK = 2_000


@dataclass(frozen=True)
class Pool:
    password: str
    accounts: list[dict[str, str]]
    seconds: float

    def write(self, path: Path) -> None:
        """Writes the pool as JSON, readable only by this user (it holds tokens and the password)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"password": self.password, "accounts": self.accounts}, fh)
            fh.write("\n")


async def make_pool(
    count: int, *, password: str, ttl_seconds: int, tag: str | None = None, settings: ServiceSettings | None = None
) -> Pool:
    """Creates ``count`` student accounts sharing one argon2 hash, each with a session and an access token."""
    began = time.perf_counter()
    settings = settings or settings_for("users")
    assert isinstance(settings, UsersSettings)
    passwords = Passwords(
        time_cost=settings.password_time_cost,
        memory_kib=settings.password_memory_kib,
        parallelism=settings.password_parallelism,
    )
    shared_hash = passwords.hash(password)
    issuer = TokenIssuer(settings)
    tag = tag or uuid.uuid4().hex[:8]
    kit = ServiceKit.build(settings)
    accounts: list[dict[str, str]] = []
    try:
        for first in range(0, count, CHUNK):
            now = utcnow()
            users: list[dict[str, Any]] = []
            profiles: list[dict[str, Any]] = []
            sessions: list[dict[str, Any]] = []
            for n in range(first, min(first + CHUNK, count)):
                user_id, family = uuid.uuid4(), uuid.uuid4()
                email = f"pool-{tag}-{n}@example.com"
                users.append(
                    {
                        "id": user_id,
                        "email": email,
                        "password_hash": shared_hash,
                        "role": "student",
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                profiles.append(
                    {"user_id": user_id, "full_name": f"Pool Student {n}", "grade": "12", "target_exam": "NEET",
                     "updated_at": now}
                )  # fmt: skip
                sessions.append(
                    {
                        "id": uuid.uuid4(),
                        "family_id": family,
                        "user_id": user_id,
                        "token_hash": hash_refresh_token(new_refresh_token()),
                        "created_at": now,
                        "expires_at": now + timedelta(seconds=ttl_seconds),
                        "client_ip": "127.0.0.1",
                        "user_agent": "cerebrum-seed",
                    }
                )
                token = issuer.issue(user_id=user_id, role="student", session_id=str(family), ttl=ttl_seconds)
                accounts.append({"user_id": str(user_id), "email": email, "token": token})
            async with kit.db.session_scope() as db:
                await db.execute(insert(User), users)
                await db.execute(insert(UserProfile), profiles)
                await db.execute(insert(Session), sessions)
    finally:
        await kit.close()
    return Pool(password=password, accounts=accounts, seconds=round(time.perf_counter() - began, 2))
