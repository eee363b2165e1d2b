"""Lesson files open only to admins and students with a confirmed enrolment, as enrolment events tell the service."""

from __future__ import annotations

import uuid

import pytest

from services.kit.events import Event
from tests.services.courses.conftest import PROBLEM, CoursesApi, enrolment_event


async def _lesson_file(api: CoursesApi) -> tuple[str, str]:
    """A published course with a file on its first lesson: (the course id, the file's URL)."""
    course = await api.create()
    url = f"/courses/{course['id']}/lessons/{course['lessons'][0]['id']}/files"
    headers = {**api.admin, "Content-Type": "application/pdf", "X-Filename": "notes.pdf"}
    uploaded = await api.client.post(url, content=b"%PDF-1.7 notes", headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    return course["id"], f"{url}/{uploaded.json()['id']}"


@pytest.mark.integration
async def test_enrolment_events_open_and_close_a_courses_files(courses: CoursesApi) -> None:
    course_id, file_url = await _lesson_file(courses)
    other_course, _ = await _lesson_file(courses)
    student = courses.student_id

    async def status() -> int:
        return (await courses.client.get(file_url, headers=courses.student)).status_code

    def announced(type_: str, enrollment_id: uuid.UUID, course: str = course_id) -> Event:
        return enrolment_event(type_, enrollment_id=enrollment_id, user_id=student, course_id=course)

    refused = await courses.client.get(file_url, headers=courses.student)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "enrolled" in refused.json()["detail"]
    assert (await courses.client.get(file_url, headers=courses.admin)).status_code == 200

    elsewhere = uuid.uuid4()
    await courses.deliver(announced("enrollment.confirmed", elsewhere, other_course))
    assert await status() == 403, "an enrolment in another course opens nothing here"

    first = uuid.uuid4()
    confirmed = announced("enrollment.confirmed", first)
    await courses.deliver(confirmed, confirmed)  # redelivered in one batch
    assert await status() == 200
    await courses.deliver(announced("enrollment.completed", first))
    assert await status() == 200, "a finished course stays open to its student"
    await courses.deliver(announced("enrollment.cancelled", first))
    assert await status() == 403
    await courses.deliver(announced("enrollment.confirmed", first))
    assert await status() == 403, "a late confirmation does not reopen a cancelled enrolment"

    # Enrolling again is a new enrolment, and opens the files again.
    await courses.deliver(announced("enrollment.confirmed", uuid.uuid4()))
    assert await status() == 200
    stranger = courses.student_of(uuid.uuid4())
    assert (await courses.client.get(file_url, headers=stranger)).status_code == 403


async def test_a_confirmed_enrolment_opens_files_embedded(embedded_courses: CoursesApi) -> None:
    api = embedded_courses
    course_id, file_url = await _lesson_file(api)
    assert (await api.client.get(file_url, headers=api.student)).status_code == 403
    enrolment = uuid.uuid4()
    for type_ in ("enrollment.confirmed", "enrollment.cancelled", "enrollment.confirmed"):
        await api.deliver(enrolment_event(type_, enrollment_id=enrolment, user_id=api.student_id, course_id=course_id))
    assert (await api.client.get(file_url, headers=api.student)).status_code == 403
    await api.deliver(
        enrolment_event("enrollment.confirmed", enrollment_id=uuid.uuid4(), user_id=api.student_id, course_id=course_id)
    )
    assert (await api.client.get(file_url, headers=api.student)).status_code == 200
