"""``cerebrum data verify``: reconcile every table, source against target, and name the keys that differ.

Per table, both sides compute in SQL the row count and an order-independent checksum: the sum
(mod 2^64) of a 64-bit hash of each row's canonical text. When they differ, keys are hashed into
buckets whose counts and sums are compared the same way, and only the differing buckets' per-key
hashes are fetched and compared: the differing keys come out without moving every row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from datamigration import sql
from datamigration.endpoints import Endpoint, TargetLayout
from datamigration.plan import ServiceSchema, TablePlan, build_plan

MAX_KEYS = 1_000
_U64 = 1 << 64


@dataclass
class TableReport:
    service: str
    table: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    differences: list[Any] = field(default_factory=list)
    difference_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "table": self.table,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "source_checksum": self.source_checksum,
            "target_checksum": self.target_checksum,
            "differences": self.differences,
        }


def _hashed(table: TablePlan, relation: str) -> str:
    return (
        f"SELECT {sql.canonical_key(table, 't')} AS k, {sql.hash64(sql.canonical_row(table, 't'))} AS h "
        f"FROM {relation} t"
    )


async def _totals(conn: asyncpg.Connection, table: TablePlan, relation: str) -> tuple[int, int]:
    row = await conn.fetchrow(f"SELECT count(*), coalesce(sum(h), 0) FROM ({_hashed(table, relation)}) s")
    return int(row[0]), int(row[1]) % _U64


async def _buckets(conn: asyncpg.Connection, table: TablePlan, relation: str, mask: int) -> dict[int, tuple[int, int]]:
    rows = await conn.fetch(
        f"SELECT {sql.bucket('k', mask)} AS b, count(*), sum(h) FROM ({_hashed(table, relation)}) s GROUP BY 1"
    )
    return {r[0]: (int(r[1]), int(r[2]) % _U64) for r in rows}


async def _keys(
    conn: asyncpg.Connection, table: TablePlan, relation: str, mask: int, buckets: list[int]
) -> dict[str, int]:
    rows = await conn.fetch(
        f"SELECT k, h FROM ({_hashed(table, relation)}) s WHERE {sql.bucket('k', mask)} = ANY($1::int[])", buckets
    )
    return {r[0]: r[1] for r in rows}


def _bucket_mask(rows: int) -> int:
    buckets = 1
    while buckets * 1024 < rows and buckets < 4096:
        buckets *= 2
    return buckets - 1


def _key_value(text: str) -> Any:
    values = json.loads(text)
    return values[0] if len(values) == 1 else values


async def verify_table(
    src: asyncpg.Connection, tgt: asyncpg.Connection, table: TablePlan, *, max_keys: int = MAX_KEYS
) -> TableReport:
    """Counts and checksums one table on both sides; lists the differing keys (at most ``max_keys``)."""
    (source_rows, source_sum), (target_rows, target_sum) = await asyncio.gather(
        _totals(src, table, table.source), _totals(tgt, table, table.target)
    )
    report = TableReport(
        table.service, table.name, source_rows, target_rows, f"{source_sum:016x}", f"{target_sum:016x}"
    )
    if (source_rows, source_sum) == (target_rows, target_sum):
        return report
    mask = _bucket_mask(max(source_rows, target_rows))
    source_buckets, target_buckets = await asyncio.gather(
        _buckets(src, table, table.source, mask), _buckets(tgt, table, table.target, mask)
    )
    differing = sorted(
        b for b in set(source_buckets) | set(target_buckets) if source_buckets.get(b) != target_buckets.get(b)
    )
    source_keys, target_keys = await asyncio.gather(
        _keys(src, table, table.source, mask, differing), _keys(tgt, table, table.target, mask, differing)
    )
    keys = sorted(k for k in set(source_keys) | set(target_keys) if source_keys.get(k) != target_keys.get(k))
    report.difference_count = len(keys)
    report.differences = [_key_value(k) for k in keys[:max_keys]]
    return report


def build_report(tables: Sequence[TableReport]) -> dict[str, Any]:
    """The report the phase-3 gate reads; ``total_differences`` counts every differing key, listed or not."""
    return {
        "tables": [t.as_dict() for t in tables],
        "total_differences": sum(t.difference_count for t in tables),
        "verified_at": datetime.now(UTC).isoformat(),
    }


async def verify(
    source: Endpoint, targets: TargetLayout, services: list[ServiceSchema], *, max_keys: int = MAX_KEYS
) -> dict[str, Any]:
    """Reconciles every planned table of every service; returns the report."""
    plans = await build_plan(source, targets, services)
    tables: list[TableReport] = []
    for plan in plans:
        src, tgt = await plan.source.connect(), await plan.target.connect()
        try:
            for table in plan.tables:
                tables.append(await verify_table(src, tgt, table, max_keys=max_keys))
        finally:
            await src.close()
            await tgt.close()
    return build_report(tables)
