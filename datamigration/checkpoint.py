"""The checkpoint table in each target: how far every table (and copy unit) has got.

A copy batch and its checkpoint row are written in one target transaction, so a run killed at
any moment resumes exactly after the last batch that committed, and never copies a row twice.

One row per (service, table, unit): unit ``''`` is the table itself (phase, change-capture
watermark, changes applied); the others are the source relations copied in turn (the table, or
each of its monthly partitions), with the last key copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from datamigration.endpoints import STATE_SCHEMA, qident
from datamigration.plan import TablePlan

CHECKPOINTS = f"{qident(STATE_SCHEMA)}.checkpoints"
TABLE_UNIT = ""

COPYING, FOLLOWING, CUTOVER, COPIED = "copying", "following", "cutover", "copied"
"""Table phases (copying → following → cutover); a copy unit is copying or copied."""

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {qident(STATE_SCHEMA)};
CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
    service text NOT NULL,
    table_name text NOT NULL,
    unit text NOT NULL,
    source text NOT NULL,
    phase text NOT NULL,
    last_key jsonb,
    rows_total bigint,
    rows_copied bigint NOT NULL DEFAULT 0,
    watermark bigint NOT NULL DEFAULT 0,
    changes_applied bigint NOT NULL DEFAULT 0,
    rounds bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    copied_at timestamptz,
    cutover_at timestamptz,
    PRIMARY KEY (service, table_name, unit)
);
"""


@dataclass(frozen=True)
class Checkpoint:
    table: str
    unit: str
    source: str
    phase: str
    last_key: list[str] | None
    rows_total: int | None
    rows_copied: int
    watermark: int
    changes_applied: int

    @property
    def done(self) -> bool:
        return self.phase in (COPIED, FOLLOWING, CUTOVER)


async def ensure_table(conn: asyncpg.Connection) -> None:
    async with conn.transaction():  # services start together: one creates, the others wait and see it
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cerebrum_migration.checkpoints'))")
        await conn.execute(_DDL)


async def load(conn: asyncpg.Connection, service: str) -> dict[tuple[str, str], Checkpoint]:
    rows = await conn.fetch(
        f"SELECT table_name, unit, source, phase, last_key::text, rows_total, rows_copied, watermark, "
        f"changes_applied FROM {CHECKPOINTS} WHERE service = $1",
        service,
    )
    return {
        (r["table_name"], r["unit"]): Checkpoint(
            r["table_name"],
            r["unit"],
            r["source"],
            r["phase"],
            json.loads(r["last_key"]) if r["last_key"] else None,
            r["rows_total"],
            r["rows_copied"],
            r["watermark"],
            r["changes_applied"],
        )
        for r in rows
    }


async def begin(conn: asyncpg.Connection, table: TablePlan, *, source: str, totals: dict[str, int]) -> None:
    """Records a table (and its copy units) as being copied, unless it already has checkpoints."""
    await conn.executemany(
        f"INSERT INTO {CHECKPOINTS} (service, table_name, unit, source, phase, rows_total) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        [(table.service, table.name, TABLE_UNIT, source, COPYING, sum(totals.values()))]
        + [(table.service, table.name, unit, source, COPYING, rows) for unit, rows in totals.items()],
    )


async def save_batch(
    conn: asyncpg.Connection, table: TablePlan, unit: str, *, last_key: list[str] | None, rows: int, done: bool
) -> None:
    """Moves a unit's checkpoint past a batch (call inside the batch's transaction)."""
    await conn.execute(
        f"UPDATE {CHECKPOINTS} SET last_key = $4::text::jsonb, rows_copied = rows_copied + $5, phase = $6, "
        "updated_at = now() WHERE service = $1 AND table_name = $2 AND unit = $3",
        table.service,
        table.name,
        unit,
        json.dumps(last_key) if last_key is not None else None,
        rows,
        COPIED if done else COPYING,
    )


async def mark_copied(conn: asyncpg.Connection, table: TablePlan) -> None:
    await conn.execute(
        f"UPDATE {CHECKPOINTS} SET phase = $3, copied_at = now(), updated_at = now(), "
        f"rows_copied = (SELECT coalesce(sum(rows_copied), 0) FROM {CHECKPOINTS} "
        "WHERE service = $1 AND table_name = $2 AND unit <> '') "
        "WHERE service = $1 AND table_name = $2 AND unit = '' AND phase = 'copying'",
        table.service,
        table.name,
        FOLLOWING,
    )


async def save_watermark(conn: asyncpg.Connection, table: TablePlan, *, watermark: int, applied: int) -> None:
    """Records that every change below ``watermark`` (a transaction id) is in the target."""
    await conn.execute(
        f"UPDATE {CHECKPOINTS} SET watermark = greatest(watermark, $3), changes_applied = changes_applied + $4, "
        "rounds = rounds + 1, updated_at = now() WHERE service = $1 AND table_name = $2 AND unit = ''",
        table.service,
        table.name,
        watermark,
        applied,
    )


async def mark_cutover(conn: asyncpg.Connection, service: str) -> None:
    await conn.execute(
        f"UPDATE {CHECKPOINTS} SET phase = $2, cutover_at = now(), updated_at = now() WHERE service = $1 AND unit = ''",
        service,
        CUTOVER,
    )


async def reset(conn: asyncpg.Connection, service: str) -> None:
    await conn.execute(f"DELETE FROM {CHECKPOINTS} WHERE service = $1", service)
