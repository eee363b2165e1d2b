"""Phase-3 copy throughput: ``cerebrum data migrate`` against ``pg_dump --data-only | psql`` of the same tables.

Both read the same sample monolith (``datamigration.sample``) on the same server and write into a
fresh database each round: the migration into the services' own schemas (made beforehand by their
migrations, untimed), pg_dump into a copy of the monolith's schema (made beforehand, untimed),
with ``--disable-triggers`` so that neither side checks foreign keys row by row (the migration
writes as a replica).
Rounds alternate (migrate, dump, migrate, …) and the median of each is kept, so that a noisy
neighbour on a shared machine hits both alike. Reported as rows/s.

    python -m bench.datamigration    # BENCH_MIGRATION_USERS / _EVENTS / _ROUNDS / _BATCH to change
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from typing import Any

import asyncpg

from bench.harness import PG_URL
from datamigration import Endpoint, MigrateOptions, TargetLayout, migrate, service_schemas
from datamigration.plan import build_plan
from datamigration.sample import SCHEMA, SERVICES, build_monolith
from datamigration.targets import prepare_targets

USERS = int(os.environ.get("BENCH_MIGRATION_USERS", "40000"))
EVENTS = int(os.environ.get("BENCH_MIGRATION_EVENTS", "80000"))
ROUNDS = int(os.environ.get("BENCH_MIGRATION_ROUNDS", "3"))
BATCH = int(os.environ.get("BENCH_MIGRATION_BATCH", "20000"))


def _url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def _new_name(role: str) -> str:
    return f"bench_dm_{role}_{uuid.uuid4().hex[:8]}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (the PostgreSQL client tools)")
    return path


def _psql(url: str, **io: Any) -> None:
    subprocess.run([_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", url], check=True, stdout=subprocess.DEVNULL, **io)


class Bench:
    def __init__(self, source_url: str) -> None:
        self.source = Endpoint(source_url, SCHEMA)
        self.schemas = service_schemas(SERVICES)
        self.made: list[str] = []
        # pg_dump's target schema, taken before any migration adds its triggers to the monolith.
        self.schema_sql = subprocess.run(
            [_tool("pg_dump"), "--schema-only", "-n", SCHEMA, source_url], check=True, capture_output=True
        ).stdout

    async def database(self, role: str) -> str:
        name = _new_name(role)
        await _admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return _url(name)

    async def migrate_once(self) -> tuple[float, int]:
        targets = TargetLayout(await self.database("services"))
        await prepare_targets(targets, self.schemas)
        started = time.perf_counter()
        results = await migrate(
            self.source, targets, self.schemas, MigrateOptions(batch_size=BATCH, prepare_targets=False)
        )
        return time.perf_counter() - started, sum(r.rows_copied for r in results)

    async def dump_once(self, tables: list[str]) -> float:
        target = await self.database("dump")
        _psql(target, input=self.schema_sql)
        started = time.perf_counter()
        producer = subprocess.Popen([_tool("pg_dump"), "--data-only", *tables, self.source.url], stdout=subprocess.PIPE)
        _psql(target, stdin=producer.stdout)
        if producer.wait() != 0:
            raise RuntimeError("pg_dump failed")
        return time.perf_counter() - started

    async def drop(self) -> None:
        for name in self.made:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _bench() -> dict[str, Any]:
    source_name = _new_name("source")
    await _admin(f'CREATE DATABASE "{source_name}"')
    bench: Bench | None = None
    try:
        await build_monolith(_url(source_name), users=USERS, events=EVENTS)
        bench = Bench(_url(source_name))
        probe = TargetLayout(await bench.database("plan"))
        await prepare_targets(probe, bench.schemas)
        tables = [t for plan in await build_plan(bench.source, probe, bench.schemas) for t in plan.tables]
        selected = [arg for t in tables for arg in ("-t", f"{SCHEMA}.{t.source_name}")]
        migrate_s, dump_s, rows = [], [], 0
        for _ in range(ROUNDS):
            seconds, rows = await bench.migrate_once()
            migrate_s.append(seconds)
            dump_s.append(await bench.dump_once(selected))
    finally:
        if bench is not None:
            await bench.drop()
        await _admin(f'DROP DATABASE IF EXISTS "{source_name}" WITH (FORCE)')

    migrate_rps, dump_rps = rows / statistics.median(migrate_s), rows / statistics.median(dump_s)
    return {
        "scenario": "phase-3 data copy",
        "rows": rows,
        "tables": len(tables),
        "rounds": ROUNDS,
        "batch_size": BATCH,
        "migrate_seconds": [round(s, 2) for s in migrate_s],
        "migrate_rows_per_s": round(migrate_rps),
        "pg_dump_psql_seconds": [round(s, 2) for s in dump_s],
        "pg_dump_psql_rows_per_s": round(dump_rps),
        "ratio_migrate_to_pg_dump": round(migrate_rps / dump_rps, 3),
        "pg_dump_command": f"pg_dump --data-only --disable-triggers -t {SCHEMA}.<each of {len(tables)} tables> | psql",
    }


def run() -> dict[str, Any]:
    """Builds the sample monolith, times both copies, returns rows/s of each and their ratio."""
    return asyncio.run(_bench())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
