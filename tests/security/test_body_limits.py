"""A body over its route's limit is refused with 413 before it is read: memory never holds it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from tests.security.embedded import bearer, running_platform
from tests.security.world import STUDENT_PASSWORD, expect

MIB = 1024 * 1024
CHUNK = 64 * 1024
BATCH_LIMIT = 1000 * (4096 + 1024)  # the analytics batch route's own limit, by its default settings


class Sixty:
    """A 60 MB body, made as it is read; counts how much of it anybody read."""

    def __init__(self) -> None:
        self.read = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while self.read < 60 * MIB:
            self.read += CHUNK
            yield b"x" * CHUNK


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def student(
    _embedded_only: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], str]]:
    """The embedded platform, a signed-in student's headers and their id."""
    async with running_platform(tmp_path_factory.mktemp("bodies")) as (_, client):
        account = {"email": f"big-{uuid.uuid4().hex[:8]}@example.com", "password": STUDENT_PASSWORD}
        made = expect(await client.post("/api/auth/register", json={**account, "full_name": "Big Body"}), 201)
        tokens = expect(await client.post("/api/auth/login", json=account), 200)
        yield client, bearer(tokens["access_token"]), made["id"]


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/api/auth/register", MIB), ("/auth/register", MIB), ("/api/analytics/events", BATCH_LIMIT)],
)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_60_mb_body_is_refused_before_it_is_read(
    student: tuple[httpx.AsyncClient, dict[str, str], str], path: str, limit: int, declared: bool
) -> None:
    client, signed_in, _ = student
    body = Sixty()
    headers = {"Content-Type": "application/json", **(signed_in if "analytics" in path else {})}
    if declared:
        headers["Content-Length"] = str(60 * MIB)
    response = await client.post(path, content=body.chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("payload-too-large")
    assert problem["limit"] == limit
    # Declared too large: not a byte read. Streamed: read only until it passed the limit.
    assert body.read == 0 if declared else body.read <= limit + CHUNK


async def test_a_batch_past_the_default_limit_but_within_its_own_is_stored(
    student: tuple[httpx.AsyncClient, dict[str, str], str],
) -> None:
    client, signed_in, user_id = student
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "user_id": user_id,
            "type": "page_view",
            "occurred_at": datetime.now(UTC).isoformat(),
            "properties": {"page": "/genetics/" + "m" * 1200},
        }
        for _ in range(900)
    ]
    response = await client.post("/api/analytics/events", json={"events": events}, headers=signed_in)
    assert len(response.request.content) > MIB
    assert response.status_code == 202, response.text[:500]
    assert response.json()["stored"] == 900
