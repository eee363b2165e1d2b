"""What to move: per service, its tables (from its SQLAlchemy metadata) in dependency order.

Every service's tables live in one schema of the monolith. Their names do not collide, except
``outbox`` and ``inbox``, which every service has: those are service-local and are moved only
when the monolith holds them prefixed (``users_outbox``); unprefixed, they are left behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from datamigration.catalog import (
    TableInfo,
    UniqueIndex,
    existing_tables,
    has_default_partition,
    leaf_partitions,
    table_info,
)
from datamigration.endpoints import Endpoint, TargetLayout, qname
from datamigration.services import SERVICE_MODELS

SERVICE_LOCAL = ("outbox", "inbox")
EXTRA_TABLES: dict[str, tuple[str, ...]] = {"courses": ("course_search",)}
"""Tables a service's migration makes by hand (not in its metadata) whose rows move too."""
SERVICE_SEEDED: dict[str, tuple[str, ...]] = {"payments": ("subscription_plans",)}
"""Catalogues a service's own migrations create and fill (the plans the server prices by): the
monolith never held them, so nothing moves into them and verification leaves them out."""
_MONTHLY = re.compile(r"^RANGE \((\w+)\)$")


class PlanError(Exception):
    """The source and the target disagree in a way that would lose data."""


@dataclass(frozen=True)
class ServiceSchema:
    """A service's tables in dependency order, and the migrations that create them."""

    name: str
    tables: tuple[str, ...]
    migrations: Path | None = None


@dataclass(frozen=True)
class TablePlan:
    service: str
    name: str
    source_schema: str
    source_name: str
    target_schema: str
    columns: tuple[str, ...]
    """Copied columns, in the source's order."""
    key: tuple[str, ...]
    key_types: tuple[str, ...]
    json_columns: frozenset[str]
    units: tuple[tuple[str, str], ...]
    """Source relations copied one after another: the table, or each monthly partition of it."""
    binary: bool
    """Both sides have the same column types: rows travel in COPY's binary format."""
    target_unique: tuple[UniqueIndex, ...] = ()
    """The target's unique indexes other than the key."""
    month_column: str | None = None
    """The target is range-partitioned by this column: monthly partitions are made as rows need them."""

    @property
    def label(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def source(self) -> str:
        return qname(self.source_schema, self.source_name)

    @property
    def target(self) -> str:
        return qname(self.target_schema, self.name)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    source: Endpoint
    target: Endpoint
    tables: tuple[TablePlan, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())
    migrations: Path | None = None


def service_schemas(names: Iterable[str] | None = None) -> list[ServiceSchema]:
    """The platform's services (all of them unless named), each with its tables and migrations."""
    specs = SERVICE_MODELS
    wanted = list(names) if names else list(specs)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise PlanError(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(specs)}")
    out = []
    for name in wanted:
        metadata, migrations = specs[name]
        tables = tuple(t.name for t in metadata.sorted_tables) + EXTRA_TABLES.get(name, ())
        out.append(ServiceSchema(name, tables, migrations))
    return out


def source_name(service: str, table: str) -> str:
    return f"{service}_{table}" if table in SERVICE_LOCAL else table


def choose_key(source: TableInfo, target: TableInfo) -> tuple[str, ...]:
    """The target's primary key when the source is unique on it too, else the source's."""
    if target.primary_key and source.has_unique(target.primary_key):
        return target.primary_key
    if source.primary_key and target.has_unique(source.primary_key):
        return source.primary_key
    raise PlanError(
        f"{source.name}: no key unique on both sides (source {source.primary_key}, target {target.primary_key})"
    )


def _month_column(target: TableInfo) -> str | None:
    match = _MONTHLY.match(target.partition_key or "")
    if not match:
        return None
    column = target.column(match.group(1))
    return column.name if column.type.startswith(("timestamp", "date")) else None


async def plan_table(
    src: asyncpg.Connection, tgt: asyncpg.Connection, *, service: str, table: str, source: Endpoint, target: Endpoint
) -> TablePlan | str:
    """Plans one table's move, or says why it is skipped."""
    name = source_name(service, table)
    source_info = await table_info(src, source.schema, name)
    if source_info is None:
        if table in SERVICE_LOCAL:
            return f"service-local {table}: not in the monolith as {name}, left to the service"
        return f"not in the source ({source.schema}.{name})"
    target_info = await table_info(tgt, target.schema, table)
    if target_info is None:
        raise PlanError(f"{service}.{table}: missing in the target {target.label}; run the service's migrations")
    columns = tuple(c for c in source_info.columns if not c.generated)
    target_columns = {c.name: c for c in target_info.columns if not c.generated}
    missing = [c.name for c in columns if c.name not in target_columns]
    if missing:
        raise PlanError(f"{service}.{table}: source columns {missing} have no place in the target")
    key = choose_key(source_info, target_info)
    units = (
        tuple(await leaf_partitions(src, source.schema, name)) if source_info.partitioned else ((source.schema, name),)
    )
    month = _month_column(target_info)
    if month and await has_default_partition(tgt, target.schema, table):
        month = None
    return TablePlan(
        service=service,
        name=table,
        source_schema=source.schema,
        source_name=name,
        target_schema=target.schema,
        columns=tuple(c.name for c in columns),
        key=key,
        key_types=tuple(source_info.column(k).type for k in key),
        json_columns=frozenset(c.name for c in columns if c.type in ("json", "jsonb")),
        units=units,
        binary=all(c.type == target_columns[c.name].type for c in columns),
        target_unique=tuple(
            u
            for u in (UniqueIndex(target_info.primary_key), *target_info.unique)
            if u.columns and (set(u.columns) != set(key) or u.predicate)
        ),
        month_column=month,
    )


async def build_plan(source: Endpoint, targets: TargetLayout, schemas: Sequence[ServiceSchema]) -> list[ServicePlan]:
    """Plans every service's move; the targets' tables must exist (``prepare_targets`` makes them)."""
    plans = []
    src = await source.connect()
    try:
        if source.schema not in {r[0] for r in await src.fetch("SELECT nspname FROM pg_namespace")}:
            raise PlanError(f"the source has no schema {source.schema!r}")
        present = await existing_tables(src, source.schema)
        for schema in schemas:
            target = targets.for_service(schema.name)
            tgt = await target.connect()
            try:
                tables: list[TablePlan] = []
                skipped: list[tuple[str, str]] = []
                for table in schema.tables:
                    if table in SERVICE_SEEDED.get(schema.name, ()):
                        skipped.append((table, "seeded by the service's own migrations, not moved"))
                        continue
                    if source_name(schema.name, table) not in present and table not in SERVICE_LOCAL:
                        skipped.append((table, f"not in the source ({source.schema})"))
                        continue
                    planned = await plan_table(src, tgt, service=schema.name, table=table, source=source, target=target)
                    if isinstance(planned, str):
                        skipped.append((table, planned))
                    else:
                        tables.append(planned)
            finally:
                await tgt.close()
            plans.append(ServicePlan(schema.name, source, target, tuple(tables), tuple(skipped), schema.migrations))
    finally:
        await src.close()
    return plans
