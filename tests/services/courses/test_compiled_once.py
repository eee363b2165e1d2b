"""A student's seat, its release, the course page and the catalogue are served from SQLAlchemy's
compiled cache after the first student's (tests/sql_cache.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.services.courses.conftest import CoursesApi
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_student_s_seat_and_reads_compile_no_statement(courses: CoursesApi) -> None:
    course = await courses.create(capacity=10)
    seats = f"/courses/{course['id']}/seats"
    for left in (9, 9):  # the first student's requests compile what the path needs
        body = {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}
        with compiled_in_this_task(courses.app.state.kit.db.engine.sync_engine) as compiled:
            held = await courses.client.post(f"{seats}/reserve", json=body, headers=courses.admin)
            page = await courses.client.get(f"/courses/{course['id']}")
            catalogue = await courses.client.get("/courses")
            release = {"reservation_id": body["reservation_id"]}
            released = await courses.client.post(f"{seats}/release", json=release, headers=courses.admin)
        assert held.json()["seats_left"] == left and page.json()["seats_left"] == left, (held.text, page.text)
        assert catalogue.status_code == 200 and released.json()["status"] == "released", released.text
    assert compiled == []
