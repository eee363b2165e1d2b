"""Statements built once, whose compiled SQL SQLAlchemy may keep from one execution to the next.

A statement built per call costs SQLAlchemy its cache key again before it can use the compiled
form it holds (1.0–1.6 ms of client CPU a statement, measured on the hot paths): the services
build theirs once (``functools.cache``), with every changing value a bound parameter.

SQLAlchemy 2.0 gives the PostgreSQL and SQLite ``INSERT … ON CONFLICT`` constructs no cache key
(sqlalchemy/sqlalchemy#10445): it compiled every upsert afresh on each execution, which was about
45% of the analytics consumer's CPU. A statement built once per dialect, whose values all arrive
as ``execute()`` parameters, renders the same SQL every time, so it can carry a key of its own.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.elements import ClauseElement

Statement = TypeVar("Statement", bound=ClauseElement)
_serial = itertools.count()


def cacheable(statement: Statement) -> Statement:
    """Gives a finished statement a cache key of its own, so that it is compiled once per engine.

    Only for statements built once and never changed afterwards: the key stands for this object,
    not for its SQL, and any literal it holds is read from the object at each execution. Values
    that change belong in the parameters passed to ``execute()``.
    """
    key = CacheKey(("cerebrum.cacheable", next(_serial)), [])
    # SQLAlchemy memoises a statement's key in the same slot (HasMemoized.memoized_instancemethod).
    statement.__dict__["_generate_cache_key"] = lambda: key
    return statement


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, in the named dialect (PostgreSQL, or else SQLite)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@functools.cache
def insert_unless_present(dialect: str, table: Table, *, returning: str, on: tuple[str, ...] = ()) -> Any:
    """``INSERT … ON CONFLICT (on) DO NOTHING RETURNING returning``, built once per dialect and table.

    Executed with a row's values (or a list of rows), it returns ``returning`` of each row that was
    new and nothing for a row already there: no error, no savepoint. ``on`` empty: any unique key.
    """
    statement = dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=list(on) or None)
    return cacheable(statement.returning(table.c[returning]))


@functools.cache
def select_by(entity: Any, column: str, *, lock: bool = False) -> Any:
    """``SELECT entity WHERE column = :key``, built once; ``lock``: FOR UPDATE, with the row read afresh."""
    query = select(entity).where(getattr(entity, column) == bindparam("key"))
    return query.with_for_update().execution_options(populate_existing=True) if lock else query


@functools.cache
def insert_into(table: Table) -> Any:
    """A table's plain INSERT, built once: its rows come as parameters (one, or many for an executemany)."""
    return insert(table)


async def insert_now(db: AsyncSession, instance: Any) -> None:
    """Writes a new mapped object by one table INSERT, at once; the object stays out of the session.

    For a row written once and not changed again in its transaction (a payment, an invoice, an audit
    entry): a flush of one new object costs several times the INSERT itself, as the unit of work
    plans, sorts and annotates a statement afresh. A broken constraint fails here, as an early flush
    would. A column left None takes its Python default, set on the object as a flush would set it,
    or else its server default; an autoincrement key is not read back.
    """
    mapper = sa_inspect(type(instance))
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = getattr(instance, prop.key)
        default: Any = column.default
        if value is None and default is not None and (default.is_scalar or default.is_callable):
            value = default.arg(None) if default.is_callable else default.arg
            setattr(instance, prop.key, value)
        if value is not None:
            values[column.key] = value
    await db.execute(insert_into(mapper.local_table), values)
