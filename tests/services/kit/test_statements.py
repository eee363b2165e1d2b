"""An upsert built once is compiled once, and still writes what each execution asks for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import create_async_engine

from services.kit.statements import cacheable
from tests.conftest import PG_URL


def _tally(schema: str) -> Table:
    return Table("tally", MetaData(schema=schema), Column("name", String, primary_key=True), Column("n", Integer))


async def test_a_cacheable_upsert_is_compiled_once_and_adds_each_executions_rows(pg_schema: str) -> None:
    tally = _tally(pg_schema)
    insert = postgresql.insert(tally)
    add = cacheable(insert.on_conflict_do_update(index_elements=["name"], set_={"n": tally.c.n + insert.excluded.n}))
    other = postgresql.insert(tally)
    keep_highest = cacheable(
        other.on_conflict_do_update(
            index_elements=["name"], set_={"n": func.greatest(tally.c.n, other.excluded.n)}
        )
    )
    engine = create_async_engine(PG_URL.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(tally.metadata.create_all)
            hits: list[Any] = []
            for n in (1, 2, 3):
                result: CursorResult[Any] = await conn.execute(
                    add, [{"name": "cells", "n": n}, {"name": "genes", "n": 10}]
                )
                hits.append(result.context.cache_hit.name)
            # Built alike on the same table, the other statement keeps its own SQL.
            await conn.execute(keep_highest, {"name": "cells", "n": 5})
            plain: CursorResult[Any] = await conn.execute(
                postgresql.insert(tally).on_conflict_do_nothing(), {"name": "x", "n": 0}
            )
            rows = dict((await conn.execute(text(f'SELECT name, n FROM "{pg_schema}".tally'))).tuples().all())
    finally:
        await engine.dispose()
    assert hits == ["CACHE_MISS", "CACHE_HIT", "CACHE_HIT"]
    assert plain.context.cache_hit.name == "NO_CACHE_KEY"  # why cacheable exists (sqlalchemy#10445)
    assert rows == {"cells": 6, "genes": 30, "x": 0}
