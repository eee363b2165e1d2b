"""A migration killed mid-copy resumes from its checkpoint; run again with nothing new, it writes nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from datamigration import MigrateOptions, migrate, phase3_gate, verify
from tests.datamigration.conftest import NewDatabase
from tests.datamigration.monolith import SCHEMA, SERVICES
from tests.datamigration.support import endpoints, fingerprint
from tests.datamigration.writer import MonolithWriter

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _checkpoints(target_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(target_url)
    try:
        return await conn.fetch(
            "SELECT service, table_name, unit, phase, rows_copied FROM cerebrum_migration.checkpoints"
        )
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def _source_rows(source_url: str) -> int:
    conn = await asyncpg.connect(source_url)
    try:
        tables = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            SCHEMA,
        )
        return sum([await conn.fetchval(f'SELECT count(*) FROM {SCHEMA}."{t[0]}"') for t in tables])
    finally:
        await conn.close()


async def _copied(target_url: str) -> int:
    return sum(r["rows_copied"] for r in await _checkpoints(target_url) if r["unit"])


async def test_a_killed_migration_resumes_and_a_second_run_is_a_no_op(
    monolith_template: str, new_database: NewDatabase
) -> None:
    source_url, target_url = await new_database(monolith_template), await new_database()
    source, targets, schemas = endpoints(source_url, target_url)
    source_rows = await _source_rows(source_url)
    # No email swaps here (the live test has them): a swap can make a batch displace a stale row,
    # and this test counts rows against checkpoints.
    writer = MonolithWriter(source_url, seed=11, swaps=False)
    writing = asyncio.create_task(writer.run())

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamigration",
        "migrate",
        "--source",
        source_url,
        "--source-schema",
        SCHEMA,
        "--target",
        target_url,
        "--services",
        ",".join(SERVICES),
        "--batch-size",
        "5000",
        "--jobs",
        "1",
        "--quiet",
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            while await _copied(target_url) < 60_000:
                assert process.returncode is None, (await process.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    # Killed mid-copy: every batch that committed is there with its checkpoint, and nothing more.
    killed_at = await _checkpoints(target_url)
    unfinished = [(r["service"], r["table_name"]) for r in killed_at if not r["unit"] and r["phase"] == "copying"]
    assert unfinished, "the migration finished before it was killed"
    conn = await asyncpg.connect(target_url)
    try:
        for service, table in unfinished:
            checkpointed = sum(
                r["rows_copied"] for r in killed_at if (r["service"], r["table_name"]) == (service, table) and r["unit"]
            )
            assert await conn.fetchval(f'SELECT count(*) FROM "{service}"."{table}"') == checkpointed
    finally:
        await conn.close()

    await asyncio.sleep(0.5)  # the monolith goes on while no migration runs: its log keeps every change
    writer.stop.set()
    await writing
    assert writer.acknowledged > 0

    resumed = await migrate(source, targets, schemas, MigrateOptions(batch_size=20_000))
    assert [r.status for r in resumed] == ["caught-up"] * len(SERVICES)
    # It went on from the checkpoints: only what the killed run had not copied (and the writer's
    # rows beyond them) was copied again.
    copied_before = sum(r["rows_copied"] for r in killed_at if r["unit"])
    assert copied_before >= 60_000
    assert sum(r.rows_copied for r in resumed) < source_rows - copied_before + 30_000

    before = await fingerprint(target_url)
    again = await migrate(source, targets, schemas, MigrateOptions())
    assert sum(r.rows_copied + r.changes_written for r in again) == 0
    assert await fingerprint(target_url) == before

    report = await verify(source, targets, schemas)
    assert report["total_differences"] == 0, [t for t in report["tables"] if t["differences"]]
    assert phase3_gate(report).passed
