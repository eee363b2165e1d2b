"""Which statements a request compiled: SQLAlchemy keeps each statement's compiled form per engine.

A statement that SQLAlchemy cannot key (an ``INSERT … ON CONFLICT`` without one of its own) or that
is built with a new shape per call is compiled again at every request, about a millisecond of a
core each time on the hot paths. A request after the first of its kind must compile nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, default


@contextmanager
def compiled_in_this_task(engine: Engine) -> Iterator[list[str]]:
    """The statements this task runs that did not come from the compiled cache (background jobs left out)."""
    task, compiled = asyncio.current_task(), []

    def note(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if asyncio.current_task() is task and context.cache_hit is not default.CACHE_HIT:
            compiled.append(f"{context.cache_hit}: {statement}")

    event.listen(engine, "after_cursor_execute", note)
    try:
        yield compiled
    finally:
        event.remove(engine, "after_cursor_execute", note)
