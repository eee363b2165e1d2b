"""Change capture: triggers in the source log the key of every row written; rounds replay them.

Statement-level triggers (with transition tables, so one INSERT per statement, not per row) add
``(table, key, xid)`` to ``cerebrum_migration.changes`` in the writer's own transaction. A round
takes the oldest transaction still running (``pg_snapshot_xmin``) as its horizon: every change
below it is committed (or rolled back) and visible, and none can still appear there. It reads
the current source row of each changed key and makes the target row equal (deleted when the
source row is gone), then records the horizon as the table's watermark in the target, in the
same transaction as the last changes. Replaying a change twice is harmless: the target is made
equal to the source, not patched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from datamigration import checkpoint, sql
from datamigration.endpoints import STATE_SCHEMA, qident, qlit, qname
from datamigration.partitions import ensure_months
from datamigration.plan import ServicePlan, TablePlan

CHANGES = f"{qident(STATE_SCHEMA)}.changes"
TRIGGER = "cerebrum_migration_capture"
FENCE = "cerebrum_migration_fence"
STAGE = "cerebrum_migration_stage"
_SOURCE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {qident(STATE_SCHEMA)};
CREATE TABLE IF NOT EXISTS {CHANGES} (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    key jsonb NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS changes_table_id ON {CHANGES} (table_name, id);
CREATE OR REPLACE FUNCTION {qident(STATE_SCHEMA)}.refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'read_only_sql_transaction', MESSAGE = TG_ARGV[0];
END $$;
"""


def _function(table: TablePlan) -> str:
    return qname(STATE_SCHEMA, "capture_" + re.sub(r"\W", "_", table.label))


def _capture_ddl(table: TablePlan) -> str:
    label, key = qlit(table.label), sql.key_json(table, "r")
    log, rows = f"INSERT INTO {CHANGES} (table_name, key)", f"SELECT {label}, {key} FROM"
    return f"""
CREATE OR REPLACE FUNCTION {_function(table)}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {log} {rows} new_rows r;
    ELSIF TG_OP = 'UPDATE' THEN
        {log} {rows} new_rows r UNION {rows} old_rows r;
    ELSE
        {log} {rows} old_rows r;
    END IF;
    RETURN NULL;
END $$;
"""


def _trigger_ddl(table: TablePlan) -> str:
    return f"""
CREATE TRIGGER {TRIGGER}_ins AFTER INSERT ON {table.source}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_function(table)}();
CREATE TRIGGER {TRIGGER}_upd AFTER UPDATE ON {table.source}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_function(table)}();
CREATE TRIGGER {TRIGGER}_del AFTER DELETE ON {table.source}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {_function(table)}();
"""


# How long the install waits for a table the monolith is writing before it lets go and tries again.
# Shorter than PostgreSQL's deadlock_timeout (1s by default): when a monolith transaction that
# holds one table waits for another we hold, we give way before the deadlock check could pick the
# monolith's transaction as its victim.
INSTALL_LOCK_TIMEOUT = "200ms"


async def install(conn: asyncpg.Connection, plan: ServicePlan) -> None:
    """Starts logging changes to the service's source tables (idempotent; before the copy reads a row).

    The monolith keeps writing meanwhile: the triggers need every table locked against writes for
    an instant, and a busy table makes the install let go of all of them and try again shortly.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception_type((asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)),
        wait=wait_random_exponential(multiplier=0.05, max=2),
        stop=stop_after_delay(120),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await _install(conn, plan)


async def _install(conn: asyncpg.Connection, plan: ServicePlan) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cerebrum_migration.install'))")
        await conn.execute(_SOURCE_DDL)
        await conn.execute(f"SET LOCAL lock_timeout = '{INSTALL_LOCK_TIMEOUT}'")
        # Every table at once, before any trigger: no window holding some while creating others.
        if plan.tables:
            tables = ", ".join(table.source for table in plan.tables)
            await conn.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        for table in plan.tables:
            await conn.execute(_capture_ddl(table))
            if not await has_trigger(conn, table, f"{TRIGGER}_ins"):
                await conn.execute(_trigger_ddl(table))


async def has_trigger(conn: asyncpg.Connection, table: TablePlan, name: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2)", table.source, name
        )
    )


async def uninstall(conn: asyncpg.Connection, table: TablePlan) -> None:
    """Stops logging a table's changes (the cut-over, once the source is fenced)."""
    for suffix in ("ins", "upd", "del"):
        await conn.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}_{suffix} ON {table.source}")


_HORIZON_HERE = """
WITH snapshot AS (SELECT pg_current_snapshot() AS s),
here AS (
    SELECT backend_xid::text::bigint AS xid32 FROM pg_stat_activity
    WHERE datname = current_database() AND backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database = current_database()
)
SELECT coalesce(
    (SELECT min(x::text::bigint) FROM snapshot, pg_snapshot_xip(s) AS x
     WHERE x::text::bigint % 4294967296 IN (SELECT xid32 FROM here)),
    (SELECT pg_snapshot_xmax(s)::text::bigint FROM snapshot)
)
"""


async def sees_all_sessions(conn: asyncpg.Connection) -> bool:
    """Whether this role may read every session's transaction id (superuser or pg_read_all_stats)."""
    return bool(
        await conn.fetchval(
            "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') "
            "FROM pg_roles WHERE rolname = current_user"
        )
    )


async def horizon(conn: asyncpg.Connection, *, this_database_only: bool = True) -> int:
    """The oldest transaction still running in the source database: changes below it are visible for good.

    Only this database's transactions can log a change here, so one left open in another database
    of the cluster (which holds back the cluster-wide ``xmin``) does not stall the catch-up. A role
    that cannot see other sessions' transaction ids falls back to the cluster-wide horizon.
    """
    if this_database_only:
        return int(await conn.fetchval(_HORIZON_HERE))
    return int(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))


async def next_xid(conn: asyncpg.Connection) -> int:
    """The first transaction id not yet assigned (the horizon while writes are locked out)."""
    return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))


async def pending(conn: asyncpg.Connection, plan: ServicePlan) -> int:
    """Changes logged and not yet replayed (replayed ones are deleted from the log)."""
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {CHANGES} WHERE table_name = ANY($1::text[])", [t.label for t in plan.tables]
        )
    )


@dataclass
class Applied:
    keys: int = 0
    inserted: int = 0
    deleted: int = 0
    """Rows deleted: gone from the source, changed (and inserted again), or stale holders of a unique value."""

    @property
    def writes(self) -> int:
        return self.inserted + self.deleted

    def add(self, other: Applied) -> None:
        self.keys += other.keys
        self.inserted += other.inserted
        self.deleted += other.deleted


class ChangeApplier:
    """Replays one table's logged changes into the target."""

    def __init__(self, src: asyncpg.Connection, tgt: asyncpg.Connection, table: TablePlan, *, batch_size: int) -> None:
        self.src, self.tgt, self.table, self.batch_size = src, tgt, table, batch_size
        self.months: set[date] = set()
        t = table
        self._read_sql = (
            f"WITH k AS (SELECT DISTINCT {sql.key_from_json(t, 'j')} FROM unnest($1::jsonb[]) AS j) "
            f"SELECT {sql.key_json(t, 'k')}::text, s.{qident(t.key[0])} IS NOT NULL, {sql.columns(t, 's')} "
            f"FROM k LEFT JOIN {t.source} s ON {sql.key_match(t, 's', 'k')}"
        )
        keys = f"(SELECT {sql.key_from_json(t, 'j')} FROM unnest($1::jsonb[]) AS j) k"
        # The rows that differ go, then the source's rows that are missing come in. A delete and
        # insert, not an update: two rows that swapped a unique value can only be written this way.
        self._delete_sql = (
            f"DELETE FROM {t.target} t USING {keys} WHERE {sql.key_match(t, 't', 'k')} AND NOT EXISTS "
            f"(SELECT 1 FROM {STAGE} s WHERE {sql.key_match(t, 's', 't')} AND {sql.same_row(t, 's', 't')})"
        )
        self._insert_sql = (
            f"INSERT INTO {t.target} ({sql.columns(t)}) SELECT {sql.columns(t, 's')} FROM {STAGE} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {t.target} t WHERE {sql.key_match(t, 't', 's')})"
        )

    async def replay(self, *, since: int, below: int | None) -> Applied:
        """Makes the target equal to the source for every key changed in ``[since, below)``."""
        done, cursor = Applied(), 0
        while True:
            rows = await self.src.fetch(
                f"SELECT id, key::text FROM {CHANGES} WHERE table_name = $1 AND id > $2 "
                "AND xid >= $3::text::xid8 AND ($4::text IS NULL OR xid < $4::text::xid8) ORDER BY id LIMIT $5",
                self.table.label,
                cursor,
                str(since),
                None if below is None else str(below),
                self.batch_size,
            )
            if not rows:
                return done
            cursor = rows[-1]["id"]
            done.add(await self.apply_keys(sorted({r["key"] for r in rows})))

    async def apply_keys(self, keys: list[str]) -> Applied:
        """Makes the target rows of these keys (JSON arrays) equal to the source's, in one transaction."""
        source_rows = await self.src.fetch(self._read_sql, keys)
        normalised = [r[0] for r in source_rows]
        present = [tuple(r)[2:] for r in source_rows if r[1]]
        async with self.tgt.transaction():
            await self.tgt.execute(
                f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT {sql.columns(self.table)} "
                f"FROM {self.table.target} WITH NO DATA"
            )
            if present:
                await self.tgt.copy_records_to_table(STAGE, records=present, columns=list(self.table.columns))
                if self.table.month_column:
                    months = await self.tgt.fetch(
                        f"SELECT DISTINCT date_trunc('month', {qident(self.table.month_column)})::date FROM {STAGE}"
                    )
                    await ensure_months(self.tgt, self.table, {m[0] for m in months}, self.months)
            applied = Applied(len(normalised), deleted=_count(await self.tgt.execute(self._delete_sql, normalised)))
            for attempt in range(len(self.table.target_unique) + 1):
                try:
                    async with self.tgt.transaction():
                        applied.inserted = _count(await self.tgt.execute(self._insert_sql))
                    break
                except asyncpg.UniqueViolationError:
                    displaced = await self._displace_stale_rows()
                    if not displaced or attempt == len(self.table.target_unique):
                        raise
                    applied.deleted += displaced
        return applied

    async def _displace_stale_rows(self) -> int:
        """Deletes the target rows (outside this set) that hold a unique value a source row now has.

        Such a row is stale: the source gave its value away after the row was copied, and that
        change is in the log, not replayed yet; its replay brings the row back as it now is.
        (Two students swapped emails: the one not in this set still has the other's address.)
        """
        t, count = self.table, 0
        for unique in t.target_unique:
            match = " AND ".join(f"t.{qident(c)} = s.{qident(c)}" for c in unique.columns)
            if unique.predicate:
                match += (
                    f" AND EXISTS (SELECT FROM (SELECT t.*) AS r WHERE {unique.predicate})"
                    f" AND EXISTS (SELECT FROM (SELECT s.*) AS r WHERE {unique.predicate})"
                )
            count += _count(
                await self.tgt.execute(
                    f"DELETE FROM {t.target} t USING {STAGE} s WHERE {match} "
                    f"AND ({sql.key_columns(t, 't')}) IS DISTINCT FROM ({sql.key_columns(t, 's')})"
                )
            )
        return count


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def forget(conn: asyncpg.Connection, table: TablePlan, *, below: int) -> None:
    """Drops replayed changes from the log (the target's watermark says they are in)."""
    await conn.execute(f"DELETE FROM {CHANGES} WHERE table_name = $1 AND xid < $2::text::xid8", table.label, str(below))


async def replay_table(
    src: asyncpg.Connection,
    tgt: asyncpg.Connection,
    applier: ChangeApplier,
    *,
    since: int,
    below: int | None,
    watermark: int,
) -> Applied:
    """One round for one table: replays ``[since, below)`` (``below`` None: all logged), records ``watermark``."""
    applied = await applier.replay(since=since, below=below)
    await checkpoint.save_watermark(tgt, applier.table, watermark=watermark, applied=applied.writes)
    await forget(src, applier.table, below=watermark)
    return applied
