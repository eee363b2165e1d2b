"""The cut-over: stop the monolith's writes, replay the last changes, fence the source, record it.

``LOCK TABLE … IN EXCLUSIVE MODE`` on the service's source tables waits for every writer in
flight to commit and keeps new ones waiting (reads go on). With writers out, every change is in
the log: the last round replays all of it, the target's sequences are moved past the source's,
and a trigger that refuses writes (SQLSTATE 25006, read-only) replaces the capture triggers, all
in the lock's transaction. When it commits, the writers that were waiting fail loudly instead
of writing where nobody will read again: no acknowledged write is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from datamigration import capture, checkpoint
from datamigration.catalog import sequences
from datamigration.endpoints import STATE_SCHEMA, qident, qlit, qname
from datamigration.plan import ServicePlan, TablePlan


@dataclass(frozen=True)
class CutoverResult:
    service: str
    writes_paused_ms: float
    """How long the monolith's writers waited: from the lock to the fence."""
    final_changes: int


async def sync_sequences(src: asyncpg.Connection, tgt: asyncpg.Connection, table: TablePlan) -> None:
    """Moves each target sequence past the highest value used (never backwards)."""
    target_sequences = await sequences(tgt, table.target_schema, table.name)
    source_sequences = await sequences(src, table.source_schema, table.source_name)
    for column, sequence in target_sequences.items():
        if column not in table.columns:
            continue
        candidates = [await tgt.fetchval(f"SELECT max({qident(column)})::bigint FROM {table.target}")]
        if column in source_sequences:
            row = await src.fetchrow(f"SELECT last_value, is_called FROM {source_sequences[column]}")
            candidates.append(row["last_value"] if row["is_called"] else row["last_value"] - 1)
        current = await tgt.fetchrow(f"SELECT last_value, is_called FROM {sequence}")
        used = current["last_value"] if current["is_called"] else current["last_value"] - 1
        highest = max((c for c in candidates if c is not None), default=0)
        if highest > used:
            await tgt.execute("SELECT setval($1::regclass, $2, true)", sequence, highest)


def fence_message(service: str, table: TablePlan) -> str:
    return (
        f"{table.source_name} has moved to the {service} service's database (phase-3 data migration); "
        "the monolith's copy is read-only"
    )


async def fence(conn: asyncpg.Connection, service: str, table: TablePlan) -> None:
    """Makes a source table refuse writes (its partitions too, for writers that name them)."""
    function = f"{qident(STATE_SCHEMA)}.refuse_writes({qlit(fence_message(service, table))})"
    relations = dict.fromkeys([table.source, *(qname(*unit) for unit in table.units)])
    for relation in relations:
        await conn.execute(f"DROP TRIGGER IF EXISTS {capture.FENCE} ON {relation}")
        await conn.execute(
            f"CREATE TRIGGER {capture.FENCE} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {relation} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )
    await capture.uninstall(conn, table)


async def cut_over(
    plan: ServicePlan,
    src: asyncpg.Connection,
    tgt: asyncpg.Connection,
    final_round: Callable[[int], Awaitable[int]],
    *,
    lock_timeout_s: float = 10.0,
    attempts: int = 5,
) -> CutoverResult:
    """Runs the cut-over; ``final_round(watermark)`` replays every logged change and returns how many rows it wrote."""
    lock = await plan.source.connect()
    try:
        for attempt in range(1, attempts + 1):
            try:
                async with lock.transaction():
                    await lock.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
                    tables = ", ".join(t.source for t in plan.tables)
                    started = time.monotonic()
                    await lock.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
                    # No writer holds these tables now: every transaction id assigned so far has
                    # either logged its changes visibly or will not touch them before the fence.
                    written = await final_round(await capture.next_xid(src))
                    for table in plan.tables:
                        await sync_sequences(src, tgt, table)
                        await fence(lock, plan.name, table)
                paused = (time.monotonic() - started) * 1000
                break
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
                if attempt == attempts:
                    raise
                await asyncio.sleep(0.2 * attempt)
    finally:
        await lock.close()
    # The source's fence committed first: if this mark is lost, the next run finds nothing to
    # replay and cuts over again, harmlessly.
    await checkpoint.mark_cutover(tgt, plan.name)
    return CutoverResult(plan.name, round(paused, 1), written)
