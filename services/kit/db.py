"""Async SQLAlchemy: one engine per service, its own schema (PostgreSQL) or file (SQLite).

The request or consumer scope owns the transaction (``unit_of_work``, services/kit/uow.py);
repositories and services never commit.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg.exceptions as asyncpg_errors
import orjson
import sqlalchemy.ext.asyncio as sa_asyncio
from sqlalchemy import Table, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.kit.errors import register_dependency_error
from services.kit.settings import ServiceSettings
from services.kit.uow import Outbox, UnitOfWork, open_unit_of_work

register_dependency_error(OperationalError, "database")
register_dependency_error(InterfaceError, "database")
# Every pooled connection busy for longer than the pool's wait: overloaded, so a 503, not a 500.
register_dependency_error(PoolTimeout, "database")
# The server refusing a new connection: too many clients (53300), starting up or shutting down
# (57P01-57P03), or a connection-class error (08xxx). asyncpg raises these from its connect.
for _refusal in (
    asyncpg_errors.TooManyConnectionsError,
    asyncpg_errors.CannotConnectNowError,
    asyncpg_errors.AdminShutdownError,
    asyncpg_errors.CrashShutdownError,
    asyncpg_errors.PostgresConnectionError,
):
    register_dependency_error(_refusal, "database")

_DRIVERS = ("sqlalchemy.", "asyncpg.", "aiosqlite.")
Fact = TypeVar("Fact")


def raised_by_database_driver(exc: BaseException) -> bool:
    """Whether the error came up through the database driver (a connection it was making or using)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False


# asyncpg lets the socket's own errors through (a refused or reset connection, a connect that
# timed out, a host name that does not resolve). Those are the database being away only when the
# driver raised them: a full disk or an upstream's refused connection is not the database.
for _network_error in (ConnectionError, TimeoutError, socket.gaierror):
    register_dependency_error(_network_error, "database", when=raised_by_database_driver)


def async_url(raw: str) -> URL:
    """Normalises a DATABASE_URL to an async driver (asyncpg for PostgreSQL, aiosqlite for SQLite)."""
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url


def database_url(settings: ServiceSettings) -> URL:
    """The service's database: DATABASE_URL, or an SQLite file under the data folder."""
    if settings.database_url:
        return async_url(settings.database_url)
    path = Path(settings.data_dir) / f"{settings.service_name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    _private_sqlite_file(path)
    return make_url(f"sqlite+aiosqlite:///{path}")


def _private_sqlite_file(path: Path) -> None:
    """Makes a database file readable by its owner only (0600), creating it empty if it is missing.

    It holds password hashes, e-mail addresses and phone numbers. SQLite gives the -wal and -shm
    files it creates the database file's mode; those left by an older version are tightened too.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # another user's file: not ours to change
                file.chmod(0o600)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def json_text(value: Any) -> str:
    """A JSON column's text, by orjson rather than the standard library's json (an event's payload and
    headers are written with every outbox row, and read back by the relay). Keys that are not
    strings are written as strings, as json.dumps writes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class Database:
    """A service's engine and session factory."""

    def __init__(
        self,
        url: URL,
        *,
        schema: str | None,
        pool_size: int = 10,
        pool_overflow: int | None = None,
        pool_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.schema = None if self.is_sqlite else schema
        kwargs: dict[str, Any] = {
            "pool_pre_ping": False,
            "json_serializer": json_text,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 10}
        else:
            kwargs.update(
                pool_size=pool_size,
                # An overflow connection is closed as it is given back: a peak above the pool pays
                # a connection (a PostgreSQL backend, its set-up queries) per request.
                max_overflow=pool_size if pool_overflow is None else pool_overflow,
                pool_timeout=pool_timeout,
                connect_args={
                    "server_settings": {"search_path": self.schema or "public"},
                    "timeout": 5,
                    "command_timeout": 30,
                },
            )
        # Looked up at call time: the SQLAlchemy instrumentation patches the module's function when
        # tracing starts, which may be after this module was imported.
        self.engine: AsyncEngine = sa_asyncio.create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.outbox: Outbox | None = None
        self._listeners: dict[type, list[Callable[[Any], None]]] = {}

    def record_events_in(self, table: Table, *, source: str) -> None:
        """Names the service's outbox, where ``UnitOfWork.record`` writes its events."""
        self.outbox = Outbox(table, source)

    def when_committed(self, fact: type[Fact], fn: Callable[[Fact], None]) -> None:
        """Calls fn with each fact of this type a unit of work announced, once its transaction commits."""
        self._listeners.setdefault(fact, []).append(fn)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Database:
        return cls(
            database_url(settings),
            schema=settings.db_schema,
            pool_size=settings.database_pool_size,
            pool_overflow=settings.database_pool_overflow,
            pool_timeout=settings.database_pool_timeout,
        )

    async def ensure_schema(self) -> None:
        """Creates the service's schema if missing (PostgreSQL)."""
        if self.schema is None:
            return
        async with self.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with open_unit_of_work(self.sessionmaker, outbox=self.outbox, listeners=self._listeners) as uow:
            yield uow

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """A unit of work, for code that needs only its session."""
        async with self.unit_of_work() as uow:
            yield uow.session

    async def dispose(self) -> None:
        await self.engine.dispose()


def is_unique_violation(exc: DBAPIError) -> bool:
    """Tells whether a database error is a unique-constraint violation, on PostgreSQL or SQLite."""
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def is_foreign_key_violation(exc: DBAPIError) -> bool:
    """Tells whether a database error is a row referring to one that does not exist, on PostgreSQL or SQLite."""
    return _sqlstate(exc) == "23503" or "FOREIGN KEY constraint failed" in str(exc.orig)


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code else None
