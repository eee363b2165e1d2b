"""The targets: each service's schema made by its own migrations, written to as a replica."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from datamigration.endpoints import TargetLayout, plain_dsn
from datamigration.plan import PlanError, ServicePlan, ServiceSchema


async def prepare_targets(targets: TargetLayout, services: Sequence[ServiceSchema]) -> None:
    """Brings every service's target schema to its migrations' head (a no-op when it is there)."""
    from services.kit.db import Database, async_url
    from services.kit.migrations import upgrade

    for service in services:
        if service.migrations is None:
            continue
        endpoint = targets.for_service(service.name)
        db = Database(async_url(plain_dsn(endpoint.url)), schema=endpoint.schema, pool_size=1)
        try:
            await upgrade(db, service.migrations)
        finally:
            await db.dispose()


async def replica_mode(conn: asyncpg.Connection) -> None:
    """Writes on this connection as a replica: no foreign-key checks or triggers, as pg_restore and logical
    replication do. Rows arrive in the order they changed, not the order their references need, and the
    target's own triggers (an append-only guard) must not refuse what the source already accepted."""
    try:
        await conn.execute("SET session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError as exc:
        raise PlanError(
            "the target role may not set session_replication_role: run as the database owner with "
            "GRANT SET ON PARAMETER session_replication_role, or as a superuser"
        ) from exc


async def truncate(conn: asyncpg.Connection, plan: ServicePlan) -> None:
    """Empties the service's target tables (a fresh start, with ``--checkpoint-reset``)."""
    if plan.tables:
        await conn.execute(f"TRUNCATE {', '.join(t.target for t in plan.tables)}")
