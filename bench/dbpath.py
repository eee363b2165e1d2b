"""What a transaction costs our own process, by the way it reaches PostgreSQL: `python -m bench.dbpath`.

Every request that touches the database pays for its transaction in the service's CPU: the BEGIN,
its statements and the COMMIT. This times the same transactions four ways, on the real PostgreSQL
in a scratch schema: mapped objects through the kit's unit of work (``orm``), table statements
through it (``session``: most repositories), a SQLAlchemy Core connection (``core``), and asyncpg
alone (``asyncpg``: what SQLAlchemy drives underneath). Each is CPU time of this process
(``time.process_time``, under uvloop as the services run) per transaction; the ways take turns in
``ROUNDS`` rounds so that the machine's drift falls on each alike, and the median round counts.
Half the difference between one read and three, taken within each round, is the cost of a
statement; the rest of one read is the transaction's own.

It writes bench/results.json (``cpu_per_request.db_path``), which bench/report.py puts in
bench/results.md.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import uvloop
from sqlalchemy import Integer, String, Table, bindparam, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.harness import PG_URL
from services.kit.db import Database, async_url

RESULTS = Path("bench/results.json")
ROUNDS = 15
PER_ROUND = 150
WAYS = ("orm", "session", "core", "asyncpg")
SHAPES = ("one read", "three reads", "one insert")


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "dbpath_rows"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    score: Mapped[int] = mapped_column(Integer)


TABLE = cast(Table, Row.__table__)
Transaction = Callable[[], Awaitable[None]]


def _orm(db: Database, ids: list[uuid.UUID]) -> dict[str, Transaction]:
    by_id = select(Row).where(Row.id == bindparam("id"))

    async def reads(n: int) -> None:
        async with db.session_scope() as session:
            for i in range(n):
                (await session.execute(by_id, {"id": ids[i]})).scalar_one()

    async def one_insert() -> None:
        async with db.session_scope() as session:
            session.add(Row(id=uuid.uuid4(), name="Mendel", score=1))
            await session.flush()

    return {"one read": lambda: reads(1), "three reads": lambda: reads(3), "one insert": one_insert}


def _table_statements(
    begin: Callable[[], AbstractAsyncContextManager[Any]], ids: list[uuid.UUID]
) -> dict[str, Transaction]:
    """Table statements (rows, not mapped objects) in what ``begin`` opens: the kit's unit of work,
    as most repositories run them, or a Core connection."""
    by_id = select(TABLE).where(TABLE.c.id == bindparam("id"))
    add = insert(TABLE)

    async def reads(n: int) -> None:
        async with begin() as target:
            for i in range(n):
                (await target.execute(by_id, {"id": ids[i]})).one()

    async def one_insert() -> None:
        async with begin() as target:
            await target.execute(add, {"id": uuid.uuid4(), "name": "Mendel", "score": 1})

    return {"one read": lambda: reads(1), "three reads": lambda: reads(3), "one insert": one_insert}


async def _asyncpg(pool: asyncpg.Pool, schema: str, ids: list[uuid.UUID]) -> dict[str, Transaction]:
    by_id = f'SELECT id, name, score FROM "{schema}".dbpath_rows WHERE id = $1'
    add = f'INSERT INTO "{schema}".dbpath_rows (id, name, score) VALUES ($1, $2, $3)'

    async def reads(n: int) -> None:
        async with pool.acquire() as connection, connection.transaction():
            for i in range(n):
                await connection.fetchrow(by_id, ids[i])

    async def one_insert() -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(add, uuid.uuid4(), "Mendel", 1)

    return {"one read": lambda: reads(1), "three reads": lambda: reads(3), "one insert": one_insert}


async def _released(_connection: asyncpg.Connection) -> None:
    return None


async def _cpu_us(transaction: Transaction, count: int) -> float:
    began = time.process_time()
    for _ in range(count):
        await transaction()
    return (time.process_time() - began) / count * 1e6


async def measure() -> dict[str, Any]:
    schema = f"bench_dbpath_{uuid.uuid4().hex[:8]}"
    db = Database(async_url(PG_URL), schema=schema, pool_size=2)
    # Released as SQLAlchemy's pool releases (a transaction already ended: nothing to send), not
    # with asyncpg's default reset (RESET ALL and more, a round trip at each release).
    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=2, reset=_released)
    try:
        await db.ensure_schema()
        async with db.engine.begin() as connection:  # its connections' search_path is the schema
            await connection.run_sync(_Base.metadata.create_all)
        ids = [uuid.uuid4() for _ in range(3)]
        async with db.engine.begin() as connection:
            await connection.execute(insert(TABLE), [{"id": i, "name": "Mendel", "score": 1} for i in ids])
        ways = {
            "orm": _orm(db, ids),
            "session": _table_statements(db.session_scope, ids),
            "core": _table_statements(db.engine.begin, ids),
            "asyncpg": await _asyncpg(pool, schema, ids),
        }
        for shapes in ways.values():  # first connections, prepared statements and compilations
            for transaction in shapes.values():
                await _cpu_us(transaction, 50)
        rounds: dict[str, dict[str, list[float]]] = {way: {shape: [] for shape in SHAPES} for way in WAYS}
        for turn in range(ROUNDS):
            print(f"bench: dbpath — round {turn + 1} of {ROUNDS}", flush=True)
            for way in WAYS[turn % len(WAYS) :] + WAYS[: turn % len(WAYS)]:
                for shape in SHAPES:  # a way's shapes one after the other: their difference sees one machine
                    rounds[way][shape].append(await _cpu_us(ways[way][shape], PER_ROUND))
        rows = []
        for way in WAYS:
            one, three = rounds[way]["one read"], rounds[way]["three reads"]
            statement = statistics.median((b - a) / 2 for a, b in zip(one, three, strict=True))
            rows.append(
                {
                    "way": way,
                    "one_read_us": round(statistics.median(one)),
                    "three_reads_us": round(statistics.median(three)),
                    "one_insert_us": round(statistics.median(rounds[way]["one insert"])),
                    "per_statement_us": round(statement),
                    "per_transaction_us": round(statistics.median(one) - statement),
                }
            )
        when = datetime.now(UTC).isoformat(timespec="seconds")
        return {"when": when, "rounds": ROUNDS, "transactions_per_round": PER_ROUND, "rows": rows}
    finally:
        await pool.close()
        async with db.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.dispose()


def main() -> None:
    result = uvloop.run(measure())  # as uvicorn serves the services
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("cpu_per_request", {})["db_path"] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
