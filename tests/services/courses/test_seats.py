"""Seat reservations never oversell a course, and repeating a call never takes or frees a second seat."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from services.courses.models import Course, SeatReservation
from tests.services.courses.conftest import PROBLEM, CoursesApi

pytestmark = pytest.mark.integration


def _reservation() -> dict[str, str]:
    return {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}


async def _seats_taken(api: CoursesApi, course_id: str) -> int:
    async with api.app.state.kit.db.session_scope() as db:
        return int((await db.execute(select(Course.seats_taken).where(Course.id == uuid.UUID(course_id)))).scalar_one())


async def test_200_concurrent_reservations_for_10_seats_take_exactly_10(courses: CoursesApi) -> None:
    course = await courses.create(capacity=10)
    url = f"/courses/{course['id']}/seats/reserve"
    responses = await asyncio.gather(
        *(courses.client.post(url, json=_reservation(), headers=courses.admin) for _ in range(200))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 409: 190}, statuses
    full = next(r for r in responses if r.status_code == 409)
    assert full.headers["content-type"] == PROBLEM
    assert full.json()["title"] == "No seats left" and "no seats left" in full.json()["detail"].lower()
    assert await _seats_taken(courses, course["id"]) == 10
    async with courses.app.state.kit.db.session_scope() as db:
        held = (await db.execute(select(SeatReservation).where(SeatReservation.status == "held"))).scalars().all()
    assert len(held) == 10
    assert (await courses.client.get(f"/courses/{course['id']}")).json()["seats_left"] == 0


async def test_repeating_a_reservation_takes_one_seat_even_concurrently(courses: CoursesApi) -> None:
    course = await courses.create(capacity=3)
    url = f"/courses/{course['id']}/seats"
    body = _reservation()
    replies = await asyncio.gather(
        *(courses.client.post(f"{url}/reserve", json=body, headers=courses.admin) for _ in range(5))
    )
    assert {r.status_code for r in replies} == {200}
    assert {r.json()["status"] for r in replies} == {"held"}
    assert await _seats_taken(courses, course["id"]) == 1
    again = await courses.client.post(f"{url}/reserve", json=body, headers=courses.admin)
    assert again.json() == {**body, "course_id": course["id"], "status": "held", "seats_left": 2}
    stolen = await courses.client.post(
        f"{url}/reserve", json={**body, "student_id": str(uuid.uuid4())}, headers=courses.admin
    )
    assert stolen.status_code == 409, "a reservation id belongs to one student"


async def test_release_frees_the_seat_once_and_is_idempotent(courses: CoursesApi) -> None:
    course = await courses.create(capacity=1)
    url = f"/courses/{course['id']}/seats"
    first, second = _reservation(), _reservation()
    assert (await courses.client.post(f"{url}/reserve", json=first, headers=courses.admin)).status_code == 200
    assert (await courses.client.post(f"{url}/reserve", json=second, headers=courses.admin)).status_code == 409
    release = {"reservation_id": first["reservation_id"]}
    for _ in range(3):
        freed = await courses.client.post(f"{url}/release", json=release, headers=courses.admin)
        assert freed.status_code == 200 and freed.json()["status"] == "released"
        assert freed.json()["seats_left"] == 1
    assert await _seats_taken(courses, course["id"]) == 0
    replay = await courses.client.post(f"{url}/reserve", json=first, headers=courses.admin)
    assert replay.status_code == 409, "a released reservation is not taken again by a late retry"
    assert (await courses.client.post(f"{url}/reserve", json=second, headers=courses.admin)).status_code == 200


async def test_a_release_before_its_reserve_leaves_the_seat_free(courses: CoursesApi) -> None:
    course = await courses.create(capacity=2)
    url = f"/courses/{course['id']}/seats"
    body = _reservation()
    early = await courses.client.post(
        f"{url}/release", json={"reservation_id": body["reservation_id"]}, headers=courses.admin
    )
    assert early.status_code == 200 and early.json()["status"] == "released"
    late = await courses.client.post(f"{url}/reserve", json=body, headers=courses.admin)
    assert late.status_code == 409
    assert await _seats_taken(courses, course["id"]) == 0


async def test_seats_on_unknown_or_closed_courses_are_refused(courses: CoursesApi) -> None:
    missing = await courses.client.post(
        f"/courses/{uuid.uuid4()}/seats/reserve", json=_reservation(), headers=courses.admin
    )
    assert missing.status_code == 404
    closed = await courses.create(is_active=False)
    refused = await courses.client.post(
        f"/courses/{closed['id']}/seats/reserve", json=_reservation(), headers=courses.admin
    )
    assert refused.status_code == 409
    bad = await courses.client.post(
        f"/courses/{closed['id']}/seats/reserve", json={"reservation_id": "nope"}, headers=courses.admin
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    shrink = await courses.client.put(f"/courses/{closed['id']}", json={"capacity": 0}, headers=courses.admin)
    assert shrink.status_code == 200
    open_course = await courses.create(capacity=2)
    url = f"/courses/{open_course['id']}"
    await courses.client.post(f"{url}/seats/reserve", json=_reservation(), headers=courses.admin)
    below = await courses.client.put(url, json={"capacity": 0}, headers=courses.admin)
    assert below.status_code == 409, "capacity cannot drop below the seats already taken"
