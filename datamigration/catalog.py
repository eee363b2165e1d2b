"""What PostgreSQL's catalogue says about a table: columns and types, keys, partitions, sequences."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """``format_type`` of the column, e.g. ``character varying(254)``."""
    generated: bool


@dataclass(frozen=True)
class UniqueIndex:
    columns: tuple[str, ...]
    predicate: str | None = None
    """The WHERE of a partial index, in terms of the table's columns."""


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    kind: str
    """``r`` a plain table, ``p`` a partitioned one."""
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    unique: tuple[UniqueIndex, ...]
    """Unique indexes on plain columns other than the primary key (partial ones included)."""
    partition_key: str | None
    """``pg_get_partkeydef`` of a partitioned table: ``RANGE (occurred_at)``."""

    @property
    def partitioned(self) -> bool:
        return self.kind == "p"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def has_unique(self, columns: tuple[str, ...]) -> bool:
        return bool(columns) and (
            set(columns) == set(self.primary_key)
            or any(set(columns) == set(u.columns) and u.predicate is None for u in self.unique)
        )


_TABLE = """
SELECT c.oid, c.relkind,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
"""
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attgenerated <> '' AS generated
FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_INDEXES = """
SELECT i.indisprimary, array_agg(a.attname ORDER BY k.ord) AS columns, bool_and(k.attnum > 0) AS plain,
       pg_get_expr(i.indpred, i.indrelid) AS predicate
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary, i.indpred, i.indrelid
ORDER BY i.indisprimary DESC, i.indexrelid
"""


async def table_info(conn: asyncpg.Connection, schema: str, name: str) -> TableInfo | None:
    """Describes ``schema.name``, or None when there is no such table."""
    row = await conn.fetchrow(_TABLE, schema, name)
    if row is None:
        return None
    columns = tuple(Column(r["attname"], r["type"], r["generated"]) for r in await conn.fetch(_COLUMNS, row["oid"]))
    primary: tuple[str, ...] = ()
    unique: list[UniqueIndex] = []
    for index in await conn.fetch(_INDEXES, row["oid"]):
        if not index["plain"]:
            continue
        if index["indisprimary"] and index["predicate"] is None:
            primary = tuple(index["columns"])
        else:
            unique.append(UniqueIndex(tuple(index["columns"]), index["predicate"]))
    return TableInfo(schema, name, row["relkind"], columns, primary, tuple(unique), row["partkey"])


async def existing_tables(conn: asyncpg.Connection, schema: str) -> set[str]:
    """Names of the plain and partitioned tables in a schema (partitions themselves excluded)."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        schema,
    )
    return {r["relname"] for r in rows}


async def leaf_partitions(conn: asyncpg.Connection, schema: str, name: str) -> list[tuple[str, str]]:
    """(schema, name) of every leaf partition of a partitioned table, in name order."""
    rows = await conn.fetch(
        "SELECT n.nspname, c.relname FROM pg_partition_tree(format('%I.%I', $1::text, $2::text)::regclass) p "
        "JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE p.isleaf ORDER BY c.relname",
        schema,
        name,
    )
    return [(r["nspname"], r["relname"]) for r in rows]


async def has_default_partition(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p WHERE p.partrelid = "
            "format('%I.%I', $1::text, $2::text)::regclass AND p.partdefid <> 0)",
            schema,
            name,
        )
    )


async def sequences(conn: asyncpg.Connection, schema: str, name: str) -> dict[str, str]:
    """Column → the sequence that feeds it (serial, identity, or a sequence OWNED BY the column)."""
    rows = await conn.fetch(
        "SELECT a.attname, pg_get_serial_sequence(format('%I.%I', $1::text, $2::text), a.attname) AS seq "
        "FROM pg_attribute a WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        schema,
        name,
    )
    return {r["attname"]: r["seq"] for r in rows if r["seq"]}
