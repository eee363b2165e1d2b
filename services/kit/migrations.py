"""Alembic migrations per service, run programmatically on the service's own schema or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from services.kit.db import Database


def run_alembic_env(metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``: migrate on the connection handed in."""
    from alembic import context

    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `cerebrum db upgrade` (a connection is handed in)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_declared_only,
    )
    with context.begin_transaction():
        context.run_migrations()


def _declared_only(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Tables a migration makes by hand (full-text indexes, partitions) are not in the models;
    # autogenerate must not propose dropping them.
    return not (type_ == "table" and reflected and compare_to is None)


def _config(migrations_dir: Path, connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, migrations_dir: Path, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together migrate one at a time.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()))"))
    command.upgrade(_config(migrations_dir, connection), revision)


async def upgrade(db: Database, migrations_dir: Path, revision: str = "head") -> None:
    """Brings the service's schema to the given revision (``head`` by default)."""
    await db.ensure_schema()
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade, migrations_dir, revision)


def autogenerate(connection: Connection, migrations_dir: Path, message: str, **kw: Any) -> None:
    """Writes a new revision comparing the models with the database (a developer's tool)."""
    command.revision(_config(migrations_dir, connection), message=message, autogenerate=True, **kw)
