"""A test's draw and submission are served from SQLAlchemy's compiled cache after the first.

A statement that SQLAlchemy cannot key (an ``INSERT … ON CONFLICT`` without one of its own) or that
is built with a new shape per call is compiled again at every request: about a millisecond of a
core each time on this path. The second student's draw and submission must compile nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine, default

from tests.services.assessments.conftest import AssessmentsApi, answers_for, mcq

pytestmark = pytest.mark.integration


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


async def test_a_second_student_s_draw_and_submission_compile_no_statement(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(n=0), mcq(n=1), mcq(n=2))
    for _ in range(2):  # the first student's requests compile what the path needs
        _, student = assessments.caller()
        with compiled_in_this_task(assessments.kit.db.engine.sync_engine) as compiled:
            attempt = await assessments.start(student, rows)
            submitted = await assessments.submit(student, answers_for(rows, right=2), attempt_id=attempt)
        assert submitted.status_code == 201, submitted.text
    assert compiled == []
