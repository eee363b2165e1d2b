"""An enrolment's saga, its payment and a lesson's progress are served from SQLAlchemy's compiled
cache after the first (tests/sql_cache.py)."""

from __future__ import annotations

import pytest

from tests.services.enrollments.conftest import EnrollmentsApi
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_student_s_enrolment_payment_and_progress_compile_no_statement(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(lessons=3)
    lesson = api.fakes.courses[str(course_id)]["lessons"][0]["id"]
    for _ in range(2):  # the first student's requests compile what the path needs
        _, headers = api.student()
        with compiled_in_this_task(api.app.state.kit.db.engine.sync_engine) as compiled:
            started = await api.enrolled(headers, course_id)
            await api.pay(started)
            progress = await api.client.put(
                f"/enrollments/{started['enrollment_id']}/progress",
                json={"lesson_id": lesson, "completed": True, "time_spent_seconds": 300},
                headers=headers,
            )
        assert progress.status_code == 200, progress.text
    assert compiled == []
