"""The read-through cache: a second read is a hit, an admin change drops it, a Redis outage is no error."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.courses import service
from services.courses.app import create_app
from services.courses.demo import seed_catalogue
from tests.apps import running
from tests.conftest import free_port
from tests.services.courses.conftest import CoursesApi, pg_settings

pytestmark = pytest.mark.integration


def _cache(cache: str, result: str) -> float:
    labels = {"service": "courses", "cache": cache, "result": result}
    return REGISTRY.get_sample_value("cerebrum_cache_requests_total", labels) or 0.0


async def test_second_read_is_a_hit_and_an_admin_change_drops_the_copy(courses: CoursesApi) -> None:
    course = await courses.create(title="Plant Physiology")
    url = f"/courses/{course['id']}"
    hits, misses = _cache("course", "hit"), _cache("course", "miss")
    assert (await courses.client.get(url)).json()["title"] == "Plant Physiology"
    assert (await courses.client.get(url)).json()["title"] == "Plant Physiology"
    assert (_cache("course", "miss"), _cache("course", "hit")) == (misses + 1, hits + 1)
    key = courses.app.state.courses.cache.key("course", course["id"])
    assert await courses.app.state.kit.redis.exists(key)

    renamed = await courses.client.put(url, json={"title": "Plant Physiology Intensive"}, headers=courses.admin)
    assert renamed.status_code == 200
    assert (await courses.client.get(url)).json()["title"] == "Plant Physiology Intensive"
    assert _cache("course", "miss") == misses + 2


async def test_curriculum_is_cached_per_grade(courses: CoursesApi) -> None:
    async with courses.app.state.kit.db.session_scope() as db:
        await seed_catalogue(db=db)
    hits = _cache("curriculum", "hit")
    first = (await courses.client.get("/curriculum/12")).json()
    assert (await courses.client.get("/curriculum/12")).json() == first
    assert _cache("curriculum", "hit") == hits + 1


async def test_reads_keep_working_when_redis_is_down(pg_schema: str, redis_prefix: str, tmp_path: Path) -> None:
    settings = pg_settings(pg_schema, redis_prefix, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings)
    async with running(app) as client:
        api = CoursesApi(client, app, settings)
        course = await api.create(title="Ecology")
        changed = await client.put(f"/courses/{course['id']}", json={"title": "Ecology Revised"}, headers=api.admin)
        assert changed.status_code == 200, "a write whose cache cannot be dropped still succeeds"
        for _ in range(2):
            read = await client.get(f"/courses/{course['id']}")
            assert read.status_code == 200 and read.json()["title"] == "Ecology Revised"
        assert (await client.get("/curriculum/11")).status_code == 200


async def test_the_public_catalogue_and_search_are_cached_and_every_change_shows_at_once(courses: CoursesApi) -> None:
    biology = await courses.create(title="Cell Biology", capacity=5)
    hits = _cache("catalogue", "hit")

    first = (await courses.client.get("/courses")).json()
    assert (await courses.client.get("/courses")).json() == first
    assert _cache("catalogue", "hit") == hits + 1
    assert _seats(first) == {"Cell Biology": 5}

    # A course published, a title changed: each read right after shows it.
    await courses.create(title="Genetics")
    assert set(_seats((await courses.client.get("/courses")).json())) == {"Cell Biology", "Genetics"}
    url = f"/courses/{biology['id']}"
    found = (await courses.client.get("/courses/search?q=cell")).json()
    assert (await courses.client.get("/courses/search?q=cell")).json() == found
    assert [item["title"] for item in found["items"]] == ["Cell Biology"]
    assert (await courses.client.put(url, json={"title": "Cell Biology II"}, headers=courses.admin)).status_code == 200
    assert _seats((await courses.client.get("/courses")).json()) == {"Cell Biology II": 5, "Genetics": 50}
    found = (await courses.client.get("/courses/search?q=cell")).json()
    assert [item["title"] for item in found["items"]] == ["Cell Biology II"]

    # A draft is for admins only, who read the database, never the students' cached pages.
    draft = await courses.create(title="Zoology", is_published=False)
    assert "Zoology" not in _seats((await courses.client.get("/courses")).json())
    admins = (await courses.client.get("/courses", headers=courses.admin)).json()
    assert draft["id"] in {item["id"] for item in admins["items"]}
    assert "Zoology" not in _seats((await courses.client.get("/courses")).json())


def _seats(page: dict[str, object]) -> dict[str, int]:
    return {item["title"]: item["seats_left"] for item in page["items"]}  # type: ignore[index, union-attr]


async def test_seats_show_at_once_on_the_course_page_and_within_seconds_in_the_catalogue(
    courses: CoursesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    within = 0.5
    monkeypatch.setattr(service, "SEAT_COUNTS_SHOWN_WITHIN_SECONDS", within)
    course = await courses.create(title="Cell Biology", capacity=3)
    url = f"/courses/{course['id']}"
    assert _seats((await courses.client.get("/courses")).json()) == {"Cell Biology": 3}
    assert _seats((await courses.client.get("/courses/search?q=cell")).json()) == {"Cell Biology": 3}

    async def reserve() -> str:
        hold = {"reservation_id": str(uuid.uuid4()), "student_id": str(uuid.uuid4())}
        assert (await courses.client.post(f"{url}/seats/reserve", json=hold, headers=courses.admin)).status_code == 200
        return hold["reservation_id"]

    # Two seats taken in quick succession: the course's page shows each at once; the catalogue and
    # search keep their copies, then show both together once `within` has passed.
    taken_at = time.monotonic()
    for left in (2, 1):
        await reserve()
        assert (await courses.client.get(url)).json()["seats_left"] == left
        assert _seats((await courses.client.get("/courses")).json()) == {"Cell Biology": 3}
    while _seats((await courses.client.get("/courses")).json()) != {"Cell Biology": 1}:
        assert time.monotonic() - taken_at < within + 5, "the catalogue never showed the seats taken"
        await asyncio.sleep(0.05)
    assert time.monotonic() - taken_at >= within
    assert _seats((await courses.client.get("/courses/search?q=cell")).json()) == {"Cell Biology": 1}

    # The last seat: a full course shows in the catalogue at once, and so does its seat freed again.
    last = await reserve()
    assert _seats((await courses.client.get("/courses")).json()) == {"Cell Biology": 0}
    assert (await courses.client.get(url)).json()["seats_left"] == 0
    release = {"reservation_id": last}
    assert (await courses.client.post(f"{url}/seats/release", json=release, headers=courses.admin)).status_code == 200
    assert _seats((await courses.client.get("/courses")).json()) == {"Cell Biology": 1}
