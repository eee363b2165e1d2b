"""Where the tests' databases live: the sample monolith's builder, and names for new databases."""

from __future__ import annotations

import uuid

from datamigration.sample import SCHEMA, SERVICES, build_monolith

__all__ = ["SCHEMA", "SERVICES", "build_monolith", "database_url", "new_name"]


def database_url(base: str, name: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + name


def new_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"
