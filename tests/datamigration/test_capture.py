"""Installing change capture on a busy monolith: the monolith's transactions are never the ones that fail."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from datamigration import capture
from datamigration.plan import build_plan
from datamigration.targets import prepare_targets
from tests.datamigration.conftest import NewDatabase
from tests.datamigration.monolith import SCHEMA, build_monolith
from tests.datamigration.support import endpoints

pytestmark = pytest.mark.integration


def _touch(table: capture.TablePlan) -> str:
    """A write that matches no row but takes the table's write lock, as any monolith write does."""
    column = table.key[0]
    return f"UPDATE {table.source} SET {column} = {column} WHERE false"


async def test_a_monolith_transaction_across_two_tables_commits_while_capture_installs(
    new_database: NewDatabase,
) -> None:
    source_url, target_url = await new_database(), await new_database()
    await build_monolith(source_url, users=50, events=50)
    source, targets, schemas = endpoints(source_url, target_url)
    await prepare_targets(targets, schemas)
    plan = next(p for p in await build_plan(source, targets, schemas) if len(p.tables) >= 2)
    first, second = plan.tables[0], plan.tables[1]
    monolith = await asyncpg.connect(source_url, server_settings={"search_path": SCHEMA})
    installer = await asyncpg.connect(source_url)
    try:
        transaction = monolith.transaction()
        await transaction.start()
        await monolith.execute(_touch(second))  # the monolith holds the second table...
        installing = asyncio.create_task(capture.install(installer, plan))
        await asyncio.sleep(0.5)  # ...while the install wants every table
        await asyncio.wait_for(monolith.execute(_touch(first)), timeout=10)  # ...and then writes the first
        await asyncio.sleep(1.5)  # longer than PostgreSQL's deadlock check (1s)
        await transaction.commit()  # the monolith's work is never the victim
        await asyncio.wait_for(installing, timeout=30)
        for table in plan.tables:
            assert await capture.has_trigger(installer, table, f"{capture.TRIGGER}_ins"), table.label
    finally:
        await monolith.close()
        await installer.close()
