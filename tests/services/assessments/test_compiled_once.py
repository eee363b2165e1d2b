"""A test's draw and submission are served from SQLAlchemy's compiled cache after the first (tests/sql_cache.py)."""

from __future__ import annotations

import pytest

from tests.services.assessments.conftest import AssessmentsApi, answers_for, mcq
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_student_s_draw_and_submission_compile_no_statement(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(n=0), mcq(n=1), mcq(n=2))
    for _ in range(2):  # the first student's requests compile what the path needs
        _, student = assessments.caller()
        with compiled_in_this_task(assessments.kit.db.engine.sync_engine) as compiled:
            attempt = await assessments.start(student, rows)
            submitted = await assessments.submit(student, answers_for(rows, right=2), attempt_id=attempt)
        assert submitted.status_code == 201, submitted.text
    assert compiled == []
