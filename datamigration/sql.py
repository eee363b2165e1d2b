"""SQL fragments built from a table's plan: key lists, key parameters, canonical row text and hashes."""

from __future__ import annotations

from datamigration.endpoints import qident
from datamigration.plan import TablePlan


def columns(table: TablePlan, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + qident(c) for c in table.columns)


def key_columns(table: TablePlan, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + qident(k) for k in table.key)


def key_params(table: TablePlan, first: int) -> str:
    """``($1::text::uuid, …)``: a key passed as text, one parameter per key column."""
    return "(" + ", ".join(f"${first + i}::text::{t}" for i, t in enumerate(table.key_types)) + ")"


def key_as_text(table: TablePlan, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{qident(k)}::text" for k in table.key)


def key_from_json(table: TablePlan, var: str) -> str:
    """The typed key columns of a JSON array ``[v1, v2]`` held in ``var``."""
    return ", ".join(
        f"({var}->>{i})::{t} AS {qident(k)}" for i, (k, t) in enumerate(zip(table.key, table.key_types, strict=True))
    )


def key_json(table: TablePlan, alias: str) -> str:
    return f"jsonb_build_array({key_columns(table, alias)})"


def key_match(table: TablePlan, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{qident(k)} = {right}.{qident(k)}" for k in table.key)


def _comparable(table: TablePlan, alias: str, column: str) -> str:
    # json has no equality operator; jsonb does, and ignores key order and whitespace.
    return f"{alias}.{qident(column)}::jsonb" if column in table.json_columns else f"{alias}.{qident(column)}"


def same_row(table: TablePlan, left: str, right: str) -> str:
    """True when two rows hold the same values in every copied column (NULLs equal)."""
    lhs = ", ".join(_comparable(table, left, c) for c in table.columns)
    rhs = ", ".join(_comparable(table, right, c) for c in table.columns)
    return f"ROW({lhs}) IS NOT DISTINCT FROM ROW({rhs})"


def canonical_row(table: TablePlan, alias: str) -> str:
    """A row's content as text that equal rows share on any schema: columns by name, JSON normalised.

    Timestamps render in the session's time zone, which every connection sets to UTC.
    """
    return "json_build_array(" + ", ".join(_comparable(table, alias, c) for c in sorted(table.columns)) + ")::text"


def canonical_key(table: TablePlan, alias: str) -> str:
    return f"json_build_array({key_columns(table, alias)})::text"


def hash64(text_expr: str) -> str:
    """A signed 64-bit hash of a text: the first 16 hex digits of its MD5."""
    return f"('x' || substr(md5({text_expr}), 1, 16))::bit(64)::bigint"


def bucket(text_expr: str, mask: int) -> str:
    """Which of ``mask + 1`` buckets a key falls in, alike on both sides."""
    return f"(('x' || substr(md5({text_expr}), 17, 8))::bit(32)::int & {mask})"
