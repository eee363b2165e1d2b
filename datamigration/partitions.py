"""Monthly partitions in a target range-partitioned by time (analytics events, as the plan says).

A partitioned target has no room for a row whose month has no partition, so the copy makes the
months the source holds before copying, and the catch-up makes those its rows need. The names
follow the analytics service's own (``analytics_events_p2024_01``), so that the service's
partition keeper recognises and later retires them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

import asyncpg

from datamigration.catalog import leaf_partitions
from datamigration.endpoints import qident, qlit, qname
from datamigration.plan import TablePlan


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def partition_name(parent: str, month: date) -> str:
    return f"{parent}_p{month.year:04d}_{month.month:02d}"


async def months_in(conn: asyncpg.Connection, relation: str, column: str, where: str = "", *args: object) -> set[date]:
    """The (UTC) months the rows of a relation fall in."""
    rows = await conn.fetch(
        f"SELECT DISTINCT date_trunc('month', {qident(column)})::date AS m FROM {relation} {where}", *args
    )
    return {r["m"] for r in rows if r["m"] is not None}


async def ensure_months(conn: asyncpg.Connection, table: TablePlan, months: Iterable[date], known: set[date]) -> None:
    """Creates the target's partition for each month not known to exist."""
    for month in sorted(set(months) - known):
        name = partition_name(table.name, month)
        try:
            async with conn.transaction():  # a savepoint when called inside the caller's transaction
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {qname(table.target_schema, name)} PARTITION OF {table.target} "
                    f"FOR VALUES FROM ({qlit(month.isoformat())}) TO ({qlit(next_month(month).isoformat())})"
                )
        except asyncpg.InvalidObjectDefinitionError:
            pass  # another partition (named otherwise) already holds this month
        known.add(month)


async def known_months(conn: asyncpg.Connection, table: TablePlan) -> set[date]:
    """The months the target's partitions named in the analytics fashion already hold."""
    pattern = re.compile(rf"^{re.escape(table.name)}_p(\d{{4}})_(\d{{2}})$")
    months = set()
    for _schema, name in await leaf_partitions(conn, table.target_schema, table.name):
        if match := pattern.match(name):
            months.add(date(int(match.group(1)), int(match.group(2)), 1))
    return months
