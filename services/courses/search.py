"""Full-text search over course titles, descriptions and lesson titles.

One interface, two indexes: PostgreSQL full-text search (a tsvector per course, GIN-indexed) and
SQLite FTS5 in embedded mode. Both live in a ``course_search`` table the migration creates; the
service re-indexes a course in the same transaction that changes it. An exact title match
always ranks first.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Boolean, Float, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

_WORD = re.compile(r"\w+", re.UNICODE)
_COURSE_ID = bindparam("course_id", type_=Uuid())
_RESULT_COLUMNS: dict[str, TypeEngine[Any]] = {"course_id": Uuid(), "exact": Boolean(), "rank": Float()}


@dataclass(frozen=True)
class Match:
    course_id: uuid.UUID
    rank: float


class SearchIndex(Protocol):
    async def index_course(self, *, db: AsyncSession, course_id: uuid.UUID) -> None:
        """Writes a course's current title, description and lesson titles to the index."""
        ...

    async def search(self, *, db: AsyncSession, query: str, published_only: bool, limit: int) -> list[Match]:
        """Finds courses matching every word of the query, best first."""
        ...


def words(query: str) -> list[str]:
    """The words of a query, without the punctuation a search syntax could trip on."""
    return _WORD.findall(query)


class PostgresSearch:
    """PostgreSQL full-text search: ``websearch_to_tsquery`` (made for raw user input) on a weighted tsvector."""

    async def index_course(self, *, db: AsyncSession, course_id: uuid.UUID) -> None:
        await db.execute(
            text(
                """
                INSERT INTO course_search (course_id, document)
                SELECT c.id,
                       setweight(to_tsvector('english', c.title), 'A')
                       || setweight(to_tsvector('english', coalesce(c.description, '')), 'B')
                       || setweight(to_tsvector('english', coalesce(
                              (SELECT string_agg(l.title, ' ' ORDER BY l.position)
                               FROM lessons l WHERE l.course_id = c.id), '')), 'C')
                FROM courses c WHERE c.id = :course_id
                ON CONFLICT (course_id) DO UPDATE SET document = EXCLUDED.document
                """
            ).bindparams(_COURSE_ID),
            {"course_id": course_id},
        )

    async def search(self, *, db: AsyncSession, query: str, published_only: bool, limit: int) -> list[Match]:
        statement = text(
            f"""
            SELECT s.course_id AS course_id,
                   lower(c.title) = lower(:raw) AS exact,
                   ts_rank(s.document, q) AS rank
            FROM course_search s
            JOIN courses c ON c.id = s.course_id
            CROSS JOIN websearch_to_tsquery('english', :query) AS q
            WHERE s.document @@ q {"AND c.is_published" if published_only else ""}
            ORDER BY exact DESC, rank DESC, c.title
            LIMIT :limit
            """  # nosec B608 - a constant clause only; every value is a bound parameter
        ).columns(**_RESULT_COLUMNS)
        rows = await db.execute(statement, {"raw": query.strip(), "query": query, "limit": limit})
        return [Match(row.course_id, float(row.rank)) for row in rows]


class SqliteSearch:
    """SQLite FTS5 with the Porter stemmer; bm25 weighs title over description over lesson titles."""

    async def index_course(self, *, db: AsyncSession, course_id: uuid.UUID) -> None:
        await db.execute(
            text("DELETE FROM course_search WHERE course_id = :course_id").bindparams(_COURSE_ID),
            {"course_id": course_id},
        )
        await db.execute(
            text(
                """
                INSERT INTO course_search (course_id, title, description, lessons)
                SELECT c.id, c.title, coalesce(c.description, ''),
                       coalesce((SELECT group_concat(title, ' ')
                                 FROM (SELECT title FROM lessons WHERE course_id = c.id ORDER BY position)), '')
                FROM courses c WHERE c.id = :course_id
                """
            ).bindparams(_COURSE_ID),
            {"course_id": course_id},
        )

    async def search(self, *, db: AsyncSession, query: str, published_only: bool, limit: int) -> list[Match]:
        terms = words(query)
        if not terms:
            return []
        # Every word quoted: a student's "+", "-" or "NEAR" is a word, never FTS5 syntax.
        match = " ".join('"' + term.replace('"', "") + '"' for term in terms)
        statement = text(
            f"""
            SELECT s.course_id AS course_id,
                   lower(c.title) = lower(:raw) AS exact,
                   -bm25(course_search, 0.0, 10.0, 4.0, 1.0) AS rank
            FROM course_search s
            JOIN courses c ON c.id = s.course_id
            WHERE course_search MATCH :match {"AND c.is_published" if published_only else ""}
            ORDER BY exact DESC, rank DESC, c.title
            LIMIT :limit
            """  # nosec B608 - a constant clause only; every value is a bound parameter
        ).columns(**_RESULT_COLUMNS)
        rows = await db.execute(statement, {"raw": query.strip(), "match": match, "limit": limit})
        return [Match(row.course_id, float(row.rank)) for row in rows]


def search_index_for(dialect: str) -> SearchIndex:
    """The search index that suits the database's dialect."""
    return PostgresSearch() if dialect == "postgresql" else SqliteSearch()
