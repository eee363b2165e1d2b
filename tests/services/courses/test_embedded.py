"""The courses API as `cerebrum up` runs it with no servers: SQLite with FTS5 and the Redis stand-in."""

from __future__ import annotations

import uuid

from services.courses.demo import seed_catalogue
from tests.services.courses.conftest import CoursesApi, enrolment_event


async def test_the_whole_courses_api_works_embedded(embedded_courses: CoursesApi) -> None:
    api = embedded_courses
    async with api.app.state.kit.db.session_scope() as db:
        assert await seed_catalogue(db=db) == 10
    async with api.app.state.kit.db.session_scope() as db:
        assert await seed_catalogue(db=db) == 0, "seeding twice adds nothing"

    page = (await api.client.get("/courses", params={"grade": "repeater"})).json()
    assert page["total"] == 2 and {c["grade"] for c in page["items"]} == {"repeater"}
    curriculum = (await api.client.get("/curriculum/12")).json()
    assert [u["title"] for u in curriculum["units"]][:2] == ["Reproduction", "Genetics and Evolution"]

    created = await api.create(title="Krebs Cycle Deep Dive", capacity=1)
    found = (await api.client.get("/courses/search", params={"q": "meselson"})).json()["items"]
    assert found == [], "lesson summaries are not searched"
    found = (await api.client.get("/courses/search", params={"q": "hardy weinberg"})).json()["items"]
    assert created["id"] in [hit["id"] for hit in found]
    exact = (await api.client.get("/courses/search", params={"q": "krebs cycle deep dive"})).json()["items"]
    assert exact[0]["id"] == created["id"]
    first = (await api.client.get("/courses/search", params={"q": "Krebs cycle"})).json()["items"]
    assert {hit["slug"] for hit in first} >= {"class-11-plant-physiology", created["slug"]}
    odd = await api.client.get("/courses/search", params={"q": 'krebs" OR NEAR(-'})
    assert odd.status_code == 200, "search syntax in a query is read as words, never an error"

    renamed = await api.client.put(
        f"/courses/{created['id']}", headers=api.admin, json={"title": "Cellular Respiration"}
    )
    assert renamed.status_code == 200
    assert (await api.client.get(f"/courses/{created['id']}")).json()["title"] == "Cellular Respiration"
    again = (await api.client.get("/courses/search", params={"q": "cellular respiration"})).json()["items"]
    assert again[0]["id"] == created["id"], "the index follows the update"

    reservation = {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}
    url = f"/courses/{created['id']}/seats"
    assert (await api.client.post(f"{url}/reserve", json=reservation, headers=api.admin)).json()["seats_left"] == 0
    assert (await api.client.post(f"{url}/reserve", json=reservation, headers=api.admin)).status_code == 200
    other = {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}
    assert (await api.client.post(f"{url}/reserve", json=other, headers=api.admin)).status_code == 409
    release = {"reservation_id": reservation["reservation_id"]}
    assert (await api.client.post(f"{url}/release", json=release, headers=api.admin)).json()["seats_left"] == 1

    lesson = (await api.client.get(f"/courses/{created['id']}")).json()["lessons"][0]
    upload = await api.client.post(
        f"/courses/{created['id']}/lessons/{lesson['id']}/files",
        content=b"%PDF-1.7 notes",
        headers={**api.admin, "Content-Type": "application/pdf", "X-Filename": "krebs.pdf"},
    )
    assert upload.status_code == 201, upload.text
    enrolled = enrolment_event(
        "enrollment.confirmed", enrollment_id=uuid.uuid4(), user_id=api.student_id, course_id=created["id"]
    )
    await api.deliver(enrolled)  # lesson files are for enrolled students
    download = await api.client.get(
        f"/courses/{created['id']}/lessons/{lesson['id']}/files/{upload.json()['id']}", headers=api.student
    )
    assert download.content == b"%PDF-1.7 notes"
    ready = await api.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
