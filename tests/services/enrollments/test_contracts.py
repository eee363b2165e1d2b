"""The saga reads its upstreams' replies with typed models and their refusals by problem type."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from observability.problems import problem_type
from services.contracts.problems import NO_SEATS_LEFT
from services.courses.seats import NoSeatsLeft as CourseFull
from services.kit.errors import install_problem_handlers
from tests.services.enrollments.conftest import EnrollmentsApi

pytestmark = pytest.mark.integration


async def test_the_courses_refusal_carries_the_type_the_saga_reads() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/reserve")
    async def reserve() -> None:
        raise CourseFull("No seats left on this course")

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://courses.test") as client:
        refused = await client.post("/reserve")
    assert refused.status_code == 409 and refused.json()["type"] == problem_type(NO_SEATS_LEFT)


async def test_a_conflict_of_another_type_is_not_read_as_a_full_course(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course(capacity=0)
    _, headers = api.student()
    api.fakes.fail("reserve_seat", 409)

    response = await api.enroll(headers, course_id)

    assert response.status_code == 409
    assert response.json()["type"].endswith("course-not-open")


async def test_a_course_reply_that_breaks_the_contract_is_the_upstream_failing(api: EnrollmentsApi) -> None:
    course_id = api.fakes.add_course()
    api.fakes.courses[str(course_id)]["price_paise"] = "a lot"
    _, headers = api.student()

    response = await api.enroll(headers, course_id)

    assert response.status_code == 503, response.text
    assert response.json()["dependency"] == "courses"
    assert api.fakes.names() == ["get_user", "get_course"]
    assert await api.enrollments() == [] and await api.outbox() == []
