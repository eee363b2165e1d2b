"""Databases of each test's own: a monolith cloned from a template filled once, and empty targets."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from tests.conftest import PG_URL, require_server
from tests.datamigration.monolith import build_monolith, database_url, new_name

USERS = int(os.environ.get("CEREBRUM_MIGRATION_TEST_USERS", "100000"))
EVENTS = int(os.environ.get("CEREBRUM_MIGRATION_TEST_EVENTS", "300000"))

NewDatabase = Callable[..., Awaitable[str]]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def monolith_template() -> AsyncIterator[str]:
    """A database holding the full-volume monolith, built once and cloned by each test."""
    require_server("PostgreSQL", 5432)
    name = new_name()
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        await build_monolith(database_url(PG_URL, name), users=USERS, events=EVENTS)
        yield name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def new_database() -> AsyncIterator[NewDatabase]:
    """Makes databases (empty, or cloned from a template) that are dropped when the test ends."""
    require_server("PostgreSQL", 5432)
    made: list[str] = []

    async def make(template: str | None = None) -> str:
        name = new_name()
        await _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        made.append(name)
        return database_url(PG_URL, name)

    yield make
    for name in made:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
