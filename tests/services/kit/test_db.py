"""Which errors answer "the database is unavailable" (503) and which are a bug or another fault (500)."""

from __future__ import annotations

import asyncio
import errno
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.kit.db import Database, async_url
from services.kit.errors import dependency_of, install_problem_handlers
from services.kit.settings import ServiceSettings
from tests.conftest import PG_URL


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def away() -> Iterator[Database]:
    """A PostgreSQL database whose server is not there: connecting is refused."""
    yield Database(async_url(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"), schema="public")


def _app(away: Database, tmp_path: Path) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/ping")
    async def ping() -> None:
        await away.ping()

    @app.get("/save")
    async def save() -> None:
        # What a write to a full disk raises: an OSError that is no fault of the database.
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "upload"))

    @app.get("/upstream")
    async def upstream() -> None:
        # Another service refusing a connection is not the database being away either.
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 8102)")

    return app


async def test_a_refused_database_connection_is_the_database(away: Database) -> None:
    with pytest.raises(OSError) as raised:
        await away.ping()
    assert isinstance(raised.value, ConnectionRefusedError)
    assert dependency_of(raised.value) == "database"
    await away.dispose()


async def test_only_the_database_answers_database_unavailable(away: Database, tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=_app(away, tmp_path), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        down = await client.get("/ping")
        full_disk = await client.get("/save")
        refused_elsewhere = await client.get("/upstream")
    await away.dispose()
    assert down.status_code == 503 and down.json()["dependency"] == "database"
    assert full_disk.status_code == 500 and "database" not in full_disk.text
    assert refused_elsewhere.status_code == 500 and "database" not in refused_elsewhere.text


async def test_a_server_refusing_more_connections_is_the_database_unavailable(tmp_path: Path) -> None:
    """PostgreSQL at its connection limit ("too many clients") answers 503, not 500."""
    role = f"limited_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        as_role = make_url(PG_URL).set(username=role, password=None).render_as_string(hide_password=False)
        limited = Database(async_url(as_role), schema="public")
        transport = httpx.ASGITransport(app=_app(limited, tmp_path), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.get("/ping")
        await limited.dispose()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
    assert refused.status_code == 503, refused.text
    assert refused.json()["dependency"] == "database"


async def test_a_pool_without_overflow_stays_within_the_roles_connection_limit() -> None:
    """DATABASE_POOL_OVERFLOW=0: a burst larger than the pool waits for its connections instead of
    opening more, so a service sized to its role's connection limit is never refused one."""
    role = f"pooled_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 2')
        as_role = make_url(PG_URL).set(username=role, password=None).render_as_string(hide_password=False)
        db = Database.from_settings(
            ServiceSettings(
                database_url=as_role, database_schema="public", database_pool_size=2, database_pool_overflow=0
            )
        )

        async def hold() -> None:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(0.05)"))

        try:
            outcomes = await asyncio.gather(*(hold() for _ in range(6)), return_exceptions=True)
        finally:
            await db.dispose()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
    assert outcomes == [None] * 6


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_a_json_column_keeps_what_the_standard_library_would(
    backend: str, pg_schema: str, tmp_path: Path
) -> None:
    """JSON columns go through orjson: keys that are not strings become strings (as json.dumps makes
    them), and text outside ASCII comes back as it went in."""
    from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

    url = async_url(PG_URL) if backend == "postgresql" else async_url(f"sqlite:///{tmp_path / 'json.db'}")
    db = Database(url, schema=pg_schema)
    notes = Table("notes", MetaData(schema=db.schema), Column("id", Integer, primary_key=True), Column("body", JSON))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(notes.metadata.create_all)
            await conn.execute(insert(notes), {"id": 1, "body": {"topic": "कोशिका", 3: [1.5, None]}})
            body = (await conn.execute(select(notes.c.body))).scalar_one()
    finally:
        await db.dispose()
    assert body == {"topic": "कोशिका", "3": [1.5, None]}
