"""SQL that differs between PostgreSQL and SQLite, as expressions that compile to either."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement, GenericFunction


class utc_day(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it renders
    """The UTC calendar day of a timestamp."""

    type = Date()
    inherit_cache = True


class utc_week(FunctionElement[Any]):  # noqa: N801
    """The Monday (UTC) of a timestamp's ISO week."""

    type = Date()
    inherit_cache = True


class greatest(GenericFunction[Any]):  # noqa: N801
    """The larger of two values, ignoring a NULL one (``greatest`` / SQLite's two-argument ``max``)."""

    inherit_cache = True


class least(GenericFunction[Any]):  # noqa: N801
    """The smaller of two values, ignoring a NULL one."""

    inherit_cache = True


@compiles(utc_day, "postgresql")
def _pg_day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


@compiles(utc_day)
def _sqlite_day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_week, "postgresql")
def _pg_week(element: utc_week, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(date_trunc('week', ({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC') AS DATE)"


@compiles(utc_week)
def _sqlite_week(element: utc_week, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '-6 days', 'weekday 1')"


def _pair(element: GenericFunction[Any], compiler: SQLCompiler, sql_name: str, **kw: Any) -> str:
    a, b = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{sql_name}(coalesce({a}, {b}), coalesce({b}, {a}))"


@compiles(greatest, "postgresql")
def _pg_greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return _pair(element, compiler, "greatest", **kw)


@compiles(greatest)
def _sqlite_greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return _pair(element, compiler, "max", **kw)


@compiles(least, "postgresql")
def _pg_least(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return _pair(element, compiler, "least", **kw)


@compiles(least)
def _sqlite_least(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return _pair(element, compiler, "min", **kw)
