"""Verification names the keys of corrupted, missing and extra rows; the gate refuses such a report."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg
import pytest

from datamigration import MigrateOptions, migrate, phase3_gate, verify
from datamigration.capture import ChangeApplier
from datamigration.plan import build_plan
from datamigration.targets import replica_mode
from tests.datamigration.conftest import NewDatabase
from tests.datamigration.monolith import SCHEMA, build_monolith
from tests.datamigration.support import endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def migrated(new_database: NewDatabase) -> tuple[str, str]:
    """A small monolith, migrated and cut over."""
    source_url, target_url = await new_database(), await new_database()
    await build_monolith(source_url, users=2_000, events=5_000)
    source, targets, schemas = endpoints(source_url, target_url)
    await migrate(source, targets, schemas, MigrateOptions(batch_size=1_500, cutover=True))
    return source_url, target_url


async def test_reports_corrupted_missing_and_extra_rows_by_key(migrated: tuple[str, str], tmp_path: Path) -> None:
    source_url, target_url = migrated
    source, targets, schemas = endpoints(source_url, target_url)
    assert (await verify(source, targets, schemas))["total_differences"] == 0

    target = await asyncpg.connect(target_url)
    try:
        corrupted = await target.fetchval(
            "UPDATE users.users SET email = 'evil@example.com' "
            "WHERE id = (SELECT id FROM users.users ORDER BY id LIMIT 1) RETURNING id::text"
        )
        missing = await target.fetchval(
            "DELETE FROM users.user_profiles "
            "WHERE user_id = (SELECT user_id FROM users.user_profiles ORDER BY user_id DESC LIMIT 1) "
            "RETURNING user_id::text"
        )
        event = await target.fetchrow(
            "UPDATE analytics.analytics_events SET properties = properties || '{\"score\": -1}' "
            "WHERE seq = 42 RETURNING event_id::text, occurred_at"
        )
        extra = await target.fetchval(
            "INSERT INTO analytics.analytics_events (event_id, occurred_at, user_id, type, properties) "
            "VALUES (gen_random_uuid(), '2025-02-03 04:05:06+00', gen_random_uuid(), 'forged', '{}') "
            "RETURNING event_id::text"
        )
        # Equal JSON written differently is not a difference: rows are compared by their content.
        await target.execute(
            "UPDATE enrollments.enrollments SET lesson_ids = replace(lesson_ids::text, ', ', ',   ')::json"
        )
    finally:
        await target.close()

    report = await verify(source, targets, schemas)
    differing = {(t["service"], t["table"]): t["differences"] for t in report["tables"] if t["differences"]}
    assert differing == {
        ("users", "users"): [corrupted],
        ("users", "user_profiles"): [missing],
        ("analytics", "analytics_events"): sorted(
            [[event["event_id"], event["occurred_at"].isoformat()], [extra, "2025-02-03T04:05:06+00:00"]]
        ),
    }
    assert report["total_differences"] == 4
    users = next(t for t in report["tables"] if t["table"] == "users")
    assert users["source_rows"] == users["target_rows"] and users["source_checksum"] != users["target_checksum"]
    verdict = phase3_gate(report)
    assert not verdict.passed and any("users.users" in r for r in verdict.reasons)

    # The command writes the same report, in the format the SLO harness reads, and exits 1.
    path = tmp_path / "phase3.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datamigration",
        "verify",
        "--source",
        source_url,
        "--source-schema",
        SCHEMA,
        "--target",
        target_url,
        "--services",
        "users,analytics",
        "--report",
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 1, stderr.decode()
    written = json.loads(path.read_text())
    assert set(written) == {"tables", "total_differences", "verified_at"}
    assert set(written["tables"][0]) == {
        "service",
        "table",
        "source_rows",
        "target_rows",
        "source_checksum",
        "target_checksum",
        "differences",
    }
    assert written["total_differences"] == 4
    assert {"evil@example.com"}.isdisjoint(json.dumps(written))  # keys only, never row content


async def test_a_stale_row_holding_a_unique_value_gives_way(new_database: NewDatabase) -> None:
    """Two students swapped emails; only one swap is replayed yet: the other's stale row must not block it."""
    source_url, target_url = await new_database(), await new_database()
    await build_monolith(source_url, users=200, events=100)
    source, targets, schemas = endpoints(source_url, target_url)
    await migrate(source, targets, schemas[:1], MigrateOptions())
    src = await asyncpg.connect(source_url, server_settings={"search_path": SCHEMA, "timezone": "UTC"})
    tgt = await asyncpg.connect(target_url, server_settings={"timezone": "UTC"})
    try:
        a, b = [r[0] for r in await src.fetch("SELECT id FROM users ORDER BY id LIMIT 2")]
        async with src.transaction():
            emails = dict(await src.fetch("SELECT id, email FROM users WHERE id = ANY($1::uuid[])", [a, b]))
            await src.execute("UPDATE users SET email = 'swap' WHERE id = $1", a)
            await src.execute("UPDATE users SET email = $2 WHERE id = $1", b, emails[a])
            await src.execute("UPDATE users SET email = $2 WHERE id = $1", a, emails[b])
        plan = next(t for t in (await build_plan(source, targets, schemas[:1]))[0].tables if t.name == "users")
        await replica_mode(tgt)
        applied = await ChangeApplier(src, tgt, plan, batch_size=100).apply_keys([json.dumps([str(b)])])
        assert (applied.deleted, applied.inserted) == (2, 1)  # b rewritten, a displaced
        assert await tgt.fetchval("SELECT email FROM users.users WHERE id = $1", b) == emails[a]
        assert await tgt.fetchval("SELECT count(*) FROM users.users WHERE id = $1", a) == 0
    finally:
        await src.close()
        await tgt.close()
    # The logged change brings the displaced row back as it now is.
    await migrate(source, targets, schemas[:1], MigrateOptions())
    report = await verify(source, targets, schemas[:1])
    assert report["total_differences"] == 0
