"""Helpers the migration tests share: endpoints for a source and target, and target fingerprints."""

from __future__ import annotations

import asyncpg

from datamigration import Endpoint, TargetLayout, service_schemas
from datamigration.plan import ServiceSchema
from tests.datamigration.monolith import SCHEMA, SERVICES


def endpoints(source_url: str, target_url: str) -> tuple[Endpoint, TargetLayout, list[ServiceSchema]]:
    return Endpoint(source_url, SCHEMA), TargetLayout(target_url), service_schemas(SERVICES)


async def fingerprint(target_url: str) -> dict[str, tuple[int, int]]:
    """Per target table: row count and the sum of the rows' xmin — any rewritten row changes it."""
    conn = await asyncpg.connect(target_url)
    try:
        tables = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            list(SERVICES),
        )
        out = {}
        for schema, name in tables:
            row = await conn.fetchrow(f'SELECT count(*), coalesce(sum(xmin::text::bigint), 0) FROM "{schema}"."{name}"')
            out[f"{schema}.{name}"] = (row[0], int(row[1]))
        return out
    finally:
        await conn.close()


async def scalar(url: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
