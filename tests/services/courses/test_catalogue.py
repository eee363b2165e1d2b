"""Browsing, creating and changing courses, and the curriculum, on the real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from services.courses.demo import seed_catalogue
from services.courses.models import Course, Lesson
from tests.services.courses.conftest import PROBLEM, CoursesApi, course_body

pytestmark = pytest.mark.integration


async def _count(api: CoursesApi, model: Any) -> int:
    async with api.app.state.kit.db.session_scope() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


async def test_create_then_read_a_course_with_its_lessons_in_order(courses: CoursesApi) -> None:
    created = await courses.create()
    assert created["currency"] == "INR" and created["seats_left"] == 50
    assert [lesson["position"] for lesson in created["lessons"]] == [1, 2, 3]
    read = (await courses.client.get(f"/courses/{created['id']}")).json()
    assert [lesson["title"] for lesson in read["lessons"]] == [
        "Mendel's Laws of Inheritance",
        "DNA Replication and Transcription",
        "Hardy-Weinberg Principle",
    ]
    assert read["created_at"].endswith("Z") or "+00:00" in read["created_at"]
    missing = await courses.client.get(f"/courses/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_list_filters_and_paginates_with_a_total(courses: CoursesApi) -> None:
    await courses.create(grade="11", subject="botany", price_paise=999900, title="A Plant Physiology")
    await courses.create(grade="11", subject="zoology", price_paise=1799900, title="B Human Physiology")
    await courses.create(grade="12", price_paise=2999900, title="C Genetics", is_active=False)
    await courses.create(grade="12", title="D Draft", is_published=False)

    everything = (await courses.client.get("/courses")).json()
    assert everything["total"] == 3, "students never see drafts"
    assert (await courses.client.get("/courses", headers=courses.admin)).json()["total"] == 4

    def titles(page: dict[str, Any]) -> list[str]:
        return [c["title"] for c in page["items"]]

    grade_11 = (await courses.client.get("/courses", params={"grade": "11"})).json()
    assert titles(grade_11) == ["A Plant Physiology", "B Human Physiology"]
    priced = (await courses.client.get("/courses", params={"min_price": 1000000, "max_price": 2000000})).json()
    assert titles(priced) == ["B Human Physiology"]
    assert titles((await courses.client.get("/courses", params={"subject": "Botany"})).json()) == ["A Plant Physiology"]
    assert titles((await courses.client.get("/courses", params={"active": "false"})).json()) == ["C Genetics"]
    second = (await courses.client.get("/courses", params={"limit": 2, "offset": 2})).json()
    assert titles(second) == ["C Genetics"] and second["total"] == 3 and second["limit"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"grade": "10"},
        {"min_price": "-1"},
        {"min_price": "500", "max_price": "100"},
        {"limit": "0"},
        {"limit": "1000"},
        {"offset": "-5"},
        {"active": "maybe"},
        {"colour": "blue"},
    ],
)
async def test_invalid_filters_get_a_problem(courses: CoursesApi, params: dict[str, str]) -> None:
    response = await courses.client.get("/courses", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"]


async def test_admin_routes_refuse_students_and_anonymous_callers(courses: CoursesApi) -> None:
    course = await courses.create()
    writes = [
        ("POST", "/courses", course_body()),
        ("PUT", f"/courses/{course['id']}", {"title": "Hijacked"}),
        (
            "POST",
            f"/courses/{course['id']}/seats/reserve",
            {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())},
        ),
        ("POST", f"/courses/{course['id']}/seats/release", {"reservation_id": str(uuid.uuid4())}),
        ("POST", f"/courses/{course['id']}/lessons/{course['lessons'][0]['id']}/files", None),
    ]
    for method, url, body in writes:
        anonymous = await courses.client.request(method, url, json=body)
        assert anonymous.status_code == 401, (url, anonymous.text)
        assert anonymous.headers["content-type"] == PROBLEM
        student = await courses.client.request(method, url, json=body, headers=courses.student)
        assert student.status_code == 403, (url, student.text)
        assert student.headers["content-type"] == PROBLEM
    forged = await courses.client.get("/courses", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    assert (await courses.client.get(f"/courses/{course['id']}")).json()["title"] == course["title"]
    assert await _count(courses, Course) == 1 and len(await courses.outbox()) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"slug": "Not A Slug"},
        {"title": "   "},
        {"grade": "13"},
        {"price_paise": -1},
        {"price_paise": 49999.5},
        {"currency": "USD"},
        {"capacity": -3},
        {"lessons": [{"title": "No duration"}]},
        {"lessons": [{"title": "Too long", "duration_minutes": 100000}]},
        {"seats_taken": 10},
    ],
)
async def test_invalid_course_bodies_get_a_problem_and_change_nothing(
    courses: CoursesApi, overrides: dict[str, Any]
) -> None:
    response = await courses.client.post("/courses", json=course_body(**overrides), headers=courses.admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await _count(courses, Course) == 0 and await _count(courses, Lesson) == 0
    assert await courses.outbox() == []


async def test_updates_are_checked_and_a_refused_one_changes_nothing(courses: CoursesApi) -> None:
    first = await courses.create()
    second = await courses.create()
    url = f"/courses/{second['id']}"
    for body, status in [
        ({}, 422),
        ({"title": None}, 422),
        ({"price_paise": "free"}, 422),
        ({"slug": first["slug"]}, 409),
        ({"slug": "fine-slug", "is_featured": True}, 422),
    ]:
        response = await courses.client.put(url, json=body, headers=courses.admin)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
    duplicate = await courses.client.post("/courses", json=course_body(slug=first["slug"]), headers=courses.admin)
    assert duplicate.status_code == 409
    assert (await courses.client.get(url)).json() == second
    assert (
        await courses.client.put(f"/courses/{uuid.uuid4()}", json={"title": "x"}, headers=courses.admin)
    ).status_code == 404
    assert len(await courses.outbox()) == 4, "only the two creations and their publications"


async def test_lessons_are_replaced_in_place_keeping_ids(courses: CoursesApi) -> None:
    course = await courses.create()
    ids = [lesson["id"] for lesson in course["lessons"]]
    lessons = [{"title": "Mendel Revisited", "duration_minutes": 50}, {"title": "Linkage", "duration_minutes": 40}]
    changed = (
        await courses.client.put(f"/courses/{course['id']}", json={"lessons": lessons}, headers=courses.admin)
    ).json()
    assert [lesson["title"] for lesson in changed["lessons"]] == ["Mendel Revisited", "Linkage"]
    assert [lesson["id"] for lesson in changed["lessons"]] == ids[:2]


async def test_outbox_records_created_updated_and_published(courses: CoursesApi) -> None:
    draft = await courses.create(is_published=False)
    assert [e.type for e in await courses.outbox()] == ["course.created"]
    url = f"/courses/{draft['id']}"
    assert (await courses.client.get(url)).status_code == 404, "a draft is hidden from students"
    await courses.client.put(url, json={"price_paise": 1499900}, headers=courses.admin)
    await courses.client.put(url, json={"is_published": True}, headers=courses.admin)
    await courses.client.put(url, json={"is_published": True}, headers=courses.admin)
    events = await courses.outbox()
    assert [e.type for e in events] == ["course.created", "course.updated", "course.updated", "course.published"]
    assert events[1].payload["changed"] == ["price_paise"] and events[1].payload["price_paise"] == 1499900
    assert events[3].payload["course_id"] == draft["id"]
    assert (await courses.client.get(url)).status_code == 200


async def test_curriculum_lists_units_and_topics_in_order(courses: CoursesApi) -> None:
    assert (await courses.client.get("/curriculum/11")).json() == {"grade": "11", "units": []}
    async with courses.app.state.kit.db.session_scope() as db:
        assert await seed_catalogue(db=db) == 10
    eleven = (await courses.client.get("/curriculum/11")).json()
    assert [unit["position"] for unit in eleven["units"]] == [1, 2, 3, 4, 5]
    assert eleven["units"][2]["title"] == "Cell: Structure and Function"
    assert [t["title"] for t in eleven["units"][2]["topics"]] == [
        "Cell: The Unit of Life",
        "Biomolecules",
        "Cell Cycle and Cell Division",
    ]
    assert (await courses.client.get("/curriculum/repeater")).json()["units"][-1]["title"] == "Full-Syllabus Practice"
    bad = await courses.client.get("/curriculum/10")
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    page = (await courses.client.get("/courses", params={"limit": 100})).json()
    assert page["total"] == 10 and all(6 <= len(c["description"]) for c in page["items"])


async def test_published_events_keep_their_contracts(courses: CoursesApi) -> None:
    from services.contracts.events import parse

    created = await courses.create()
    await courses.client.put(f"/courses/{created['id']}", json={"is_published": True}, headers=courses.admin)
    events = await courses.outbox()
    assert events
    for event in events:
        parse(event.type, event.payload)
