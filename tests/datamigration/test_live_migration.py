"""A monolith with live writes moved to per-service schemas by one command, then verified by another."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from datamigration import MigrateOptions, migrate, phase3_gate, verify
from datamigration.progress import QuietReporter
from tests.datamigration.conftest import EVENTS, USERS, NewDatabase
from tests.datamigration.monolith import SCHEMA, SERVICES
from tests.datamigration.support import endpoints, fingerprint, scalar
from tests.datamigration.writer import MonolithWriter

pytestmark = pytest.mark.integration


async def _stop_once_every_service_follows(reporter: QuietReporter, stop: asyncio.Event, rounds: int) -> None:
    while not all(sum(1 for r in reporter.rounds if r[0] == s) >= rounds for s in SERVICES):
        await asyncio.sleep(0.1)
    stop.set()


async def test_moves_a_monolith_under_live_writes_with_zero_differences(
    monolith_template: str, new_database: NewDatabase
) -> None:
    source_url, target_url = await new_database(monolith_template), await new_database()
    source, targets, schemas = endpoints(source_url, target_url)
    writer = MonolithWriter(source_url)
    writing = asyncio.create_task(writer.run())
    await asyncio.sleep(0.3)  # the monolith is busy before the migration starts
    reporter, stop = QuietReporter(), asyncio.Event()
    stopping = asyncio.create_task(_stop_once_every_service_follows(reporter, stop, rounds=2))

    results = await migrate(
        source,
        targets,
        schemas,
        MigrateOptions(batch_size=20_000, follow=True, cutover=True, interval_s=0.2),
        reporter=reporter,
        stop=stop,
    )
    await stopping
    await asyncio.wait_for(writing, 30)

    assert [r.status for r in results] == ["cut-over"] * len(SERVICES)
    assert sum(r.rows_copied for r in results) >= USERS * 3 + EVENTS
    # The writer kept writing until each service's cut-over fenced it, and the catch-up replayed it.
    assert writer.fenced == set(SERVICES)
    assert writer.acknowledged > 100
    assert sum(r.changes_written for r in results) > 0
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError, match="moved to the users service"):
        await scalar(source_url, f"DELETE FROM {SCHEMA}.users WHERE false")

    report = await verify(source, targets, schemas)
    assert report["total_differences"] == 0, [t for t in report["tables"] if t["differences"]]
    assert phase3_gate(report).passed
    by_table = {(t["service"], t["table"]): t for t in report["tables"]}
    assert by_table[("analytics", "analytics_events")]["target_rows"] > EVENTS  # writer's events arrived
    assert by_table[("users", "outbox")]["target_rows"] == 500  # the prefixed users_outbox

    # Every registration the monolith acknowledged (and did not delete since) is in the service.
    kept = [u for u in writer.inserted_users if u not in writer.deleted_users]
    assert await scalar(target_url, "SELECT count(*) FROM users.users WHERE id = ANY($1::uuid[])", kept) == len(kept)
    # Monthly partitions were made as rows needed them, including the month the writer opened.
    partitions = await scalar(
        target_url,
        "SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'analytics.analytics_events'::regclass",
    )
    assert isinstance(partitions, list) and "analytics_events_p2026_01" in partitions and len(partitions) == 13
    # The services can write at once: sequences were moved past the copied ids.
    new_id = await scalar(
        target_url,
        "INSERT INTO users.auth_logs (email, event, outcome, created_at) VALUES ('x@example.com', 'login', "
        "'success', now()) RETURNING id",
    )
    assert isinstance(new_id, int) and new_id > USERS

    # Once cut over, running the migration again changes nothing.
    before = await fingerprint(target_url)
    again = await migrate(source, targets, schemas, MigrateOptions())
    assert [r.status for r in again] == ["cut-over"] * len(SERVICES)
    assert sum(r.rows_copied + r.changes_written for r in again) == 0
    assert await fingerprint(target_url) == before
