"""An upsert built once is compiled once, and still writes what each execution asks for; a row written
by insert_now gets what a flush would have given it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.statements import cacheable, insert_now
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


class _Base(DeclarativeBase):
    pass


def _entry_model(schema: str) -> type[Any]:
    class Entry(_Base):
        __tablename__ = "entries"
        __table_args__ = {"schema": schema}
        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        name: Mapped[str] = mapped_column(String(20), unique=True)
        kind: Mapped[str] = mapped_column(String(10), default="plain")
        stamp: Mapped[str] = mapped_column(String(40), default=lambda: "stamped")
        note: Mapped[str | None] = mapped_column(String(40))

    return Entry


async def test_insert_now_writes_the_row_with_its_defaults_and_leaves_the_session_alone(pg_schema: str) -> None:
    entry = _entry_model(pg_schema)
    engine = create_async_engine(PG_URL.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(entry.metadata.create_all, tables=[entry.__table__])
        async with AsyncSession(engine) as db, db.begin():
            first = entry(name="cell", note="kept")
            await insert_now(db, first)
            await insert_now(db, entry(name="gene", kind="rare"))
            assert (first.kind, first.stamp) == ("plain", "stamped")  # as a flush would have set them
            assert first not in db
        async with AsyncSession(engine) as db:
            with pytest.raises(IntegrityError):  # a broken constraint fails at the call, not at commit
                await insert_now(db, entry(name="cell"))
            await db.rollback()
            query = select(entry.name, entry.kind, entry.stamp, entry.note).order_by(entry.name)
            rows = [tuple(row) for row in (await db.execute(query)).all()]
    finally:
        await engine.dispose()
        _Base.metadata.clear()
    assert rows == [("cell", "plain", "stamped", "kept"), ("gene", "rare", "stamped", None)]
