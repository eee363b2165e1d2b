"""Full-text search on PostgreSQL: tsvector with a GIN index, websearch_to_tsquery, ts_rank."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.services.courses.conftest import PROBLEM, CoursesApi

pytestmark = pytest.mark.integration


async def _search(api: CoursesApi, q: str, **headers: str) -> list[dict[str, Any]]:
    response = await api.client.get("/courses/search", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_search_finds_a_course_by_a_word_of_a_lesson_title(courses: CoursesApi) -> None:
    physiology = await courses.create(
        title="Human Physiology Masterclass",
        description="Breathing, circulation and excretion.",
        lessons=[{"title": "Nephron Structure and Urine Formation", "duration_minutes": 60}],
    )
    await courses.create(title="Ecology and Environment", description="Populations and ecosystems.")
    hits = await _search(courses, "nephrons")
    assert [hit["id"] for hit in hits] == [physiology["id"]], "stemmed: nephrons finds Nephron"
    assert hits[0]["rank"] > 0
    assert await _search(courses, "photosynthesis") == []


async def test_an_exact_title_match_ranks_first(courses: CoursesApi) -> None:
    await courses.create(
        title="Genetics Question Bank",
        description="Genetics, genetics and more genetics: inheritance, genetics of populations.",
        lessons=[{"title": "Genetics of Blood Groups", "duration_minutes": 30}],
    )
    exact = await courses.create(title="Genetics", description="An introduction.")
    hits = await _search(courses, "  GENETICS ")
    assert [hit["id"] for hit in hits][0] == exact["id"]
    assert len(hits) == 2


async def test_drafts_are_found_only_by_admins_and_updates_reach_the_index(courses: CoursesApi) -> None:
    draft = await courses.create(title="Biotechnology Principles", is_published=False)
    assert await _search(courses, "biotechnology") == []
    assert [h["id"] for h in await _search(courses, "biotechnology", **courses.admin)] == [draft["id"]]
    await courses.client.put(
        f"/courses/{draft['id']}",
        json={"is_published": True, "lessons": [{"title": "Restriction Enzymes", "duration_minutes": 40}]},
        headers=courses.admin,
    )
    assert [h["id"] for h in await _search(courses, "restriction enzyme")] == [draft["id"]]
    assert await _search(courses, '"enzymes restriction" -biotechnology') == [], "websearch syntax is honoured"


async def test_search_uses_the_gin_index_and_refuses_empty_queries(courses: CoursesApi) -> None:
    async with courses.app.state.kit.db.session_scope() as db:
        query = (
            "SELECT indexdef FROM pg_indexes "
            "WHERE indexname = 'ix_course_search_document' AND schemaname = current_schema()"
        )
        index = (await db.execute(text(query))).scalar_one()
    assert "USING gin (document)" in index
    for q in ("", "!!!", "x" * 201):
        response = await courses.client.get("/courses/search", params={"q": q})
        assert response.status_code == 422, (q, response.text)
        assert response.headers["content-type"] == PROBLEM
