"""Where data is read from and written to: a PostgreSQL database and the schema inside it."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

APPLICATION_NAME = "cerebrum-data-migrate"
STATE_SCHEMA = "cerebrum_migration"
"""The migration's own schema, in the source (change log, fence) and in each target (checkpoints)."""


def plain_dsn(url: str) -> str:
    """Turns a SQLAlchemy-style URL (``postgresql+asyncpg://``) into a libpq DSN asyncpg accepts."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base not in ("postgresql", "postgres"):
        raise ValueError(f"only PostgreSQL is supported here, not {base!r} (an SQLite file is an embedded source)")
    return f"postgresql://{rest}"


def qident(name: str) -> str:
    """Quotes an identifier for SQL."""
    return '"' + name.replace('"', '""') + '"'


def qname(schema: str, name: str) -> str:
    return f"{qident(schema)}.{qident(name)}"


def qlit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Endpoint:
    """One database and the schema that holds the tables of interest."""

    url: str
    schema: str

    @property
    def label(self) -> str:
        database = self.url.rsplit("/", 1)[-1].split("?", 1)[0]
        return f"{database}/{self.schema}"

    async def connect(self) -> asyncpg.Connection:
        # UTC, so that timestamps render (and hash) alike on both sides whatever the server default.
        return await asyncpg.connect(
            plain_dsn(self.url),
            server_settings={"timezone": "UTC", "application_name": APPLICATION_NAME},
            command_timeout=None,
        )


@dataclass(frozen=True)
class TargetLayout:
    """Each service's target: ``url`` may hold ``{service}`` (a database per service); the schema is the service's."""

    url: str
    schema: str = "{service}"

    def for_service(self, service: str) -> Endpoint:
        return Endpoint(self.url.replace("{service}", service), self.schema.replace("{service}", service))
