"""The catalogue's rules: browsing, searching, creating and changing courses, and the curriculum."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import CourseCreated, CoursePublished, CourseUpdated
from services.courses import repository
from services.courses.cache import ReadThroughCache
from services.courses.events import course_facts
from services.courses.models import Course, Lesson
from services.courses.schemas import (
    CourseCreate,
    CourseDetail,
    CourseFilters,
    CoursePage,
    CourseSummary,
    CourseUpdate,
    Curriculum,
    Grade,
    LessonIn,
    LessonOut,
    SearchHit,
    SearchResults,
    Topic,
    Unit,
)
from services.courses.search import SearchIndex, words
from services.courses.settings import CoursesSettings
from services.courses.storage import ContentStorage
from services.kit.auth import Identity
from services.kit.db import is_unique_violation
from services.kit.edge import Headers
from services.kit.errors import Conflict, InvalidInput, NotFound
from services.kit.time import as_utc, utcnow
from services.kit.uow import UnitOfWork

log = structlog.get_logger("cerebrum.courses")


@dataclass(frozen=True)
class CoursesContext:
    """What the courses rules need besides the database session."""

    settings: CoursesSettings
    cache: ReadThroughCache
    search: SearchIndex
    storage: ContentStorage


def sees_drafts(identity: Identity | None) -> bool:
    """Admins see unpublished courses; students and anonymous visitors only published ones."""
    return identity is not None and identity.is_admin


def course_summary(course: Course) -> CourseSummary:
    return CourseSummary(
        id=course.id,
        slug=course.slug,
        title=course.title,
        description=course.description,
        subject=course.subject,
        grade=course.grade,  # type: ignore[arg-type]
        price_paise=course.price_paise,
        currency=course.currency,
        capacity=course.capacity,
        seats_left=max(course.capacity - course.seats_taken, 0),
        is_active=course.is_active,
        is_published=course.is_published,
        created_at=as_utc(course.created_at),
        updated_at=as_utc(course.updated_at),
    )


def _detail(course: Course, lessons: Sequence[Lesson]) -> CourseDetail:
    return CourseDetail(
        **course_summary(course).model_dump(),
        lessons=[
            LessonOut(
                id=lesson.id,
                position=lesson.position,
                title=lesson.title,
                duration_minutes=lesson.duration_minutes,
                summary=lesson.summary,
            )
            for lesson in lessons
        ],
    )


CATALOGUE_TTL_SECONDS = 30
"""How long the public catalogue's pages are kept at most: every change made through this service
drops them at once; this bounds what a change made behind its back (a data migration) leaves."""


Page = TypeVar("Page", bound=BaseModel)
_CATALOGUE = ("catalogue", "public")
"""The hash holding the public's catalogue pages and search results, a field per query."""


def stale_after_change(ctx: CoursesContext, course_id: uuid.UUID | None = None) -> list[str]:
    """The cached copies a change to a course makes stale: its own page and every catalogue page
    (titles, prices, seats left and publication all show in the catalogue)."""
    keys = [ctx.cache.key(*_CATALOGUE)]
    if course_id is not None:
        keys.append(ctx.cache.key("course", course_id))
    return keys


SEAT_COUNTS_SHOWN_WITHIN_SECONDS = 5.0
"""How late the catalogue and search may show a course's seats left after a seat is taken or freed.

Every enrolment takes a seat, and the catalogue is the students' most frequent read (22 of every
72 requests in the academy's mix): dropping its copies at each seat would rebuild them at each
enrolment, a dozen times a second at 10,000 students. Seat changes are therefore gathered, and the
copies dropped once per this many seconds. A course's own page shows its seats at once, and so does
the catalogue when a course fills up or opens again; a reservation is decided by the database,
never by what a page showed."""


async def seats_changed(*, ctx: CoursesContext, db: AsyncSession, course_id: uuid.UUID, full_or_opened: bool) -> None:
    """Drops what a seat taken or freed makes stale: the course's page at once; the catalogue's pages
    within ``SEAT_COUNTS_SHOWN_WITHIN_SECONDS``, or at once too when the course has just filled up or
    opened again."""
    catalogue, page = stale_after_change(ctx, course_id)
    if full_or_opened:
        await ctx.cache.invalidate(db, page, catalogue)
        return
    await ctx.cache.invalidate(db, page)
    ctx.cache.invalidate_soon(db, catalogue, within=SEAT_COUNTS_SHOWN_WITHIN_SECONDS)


async def _public_copy(
    ctx: CoursesContext, identity: Identity | None, model: type[Page], field: str, load: Callable[[], Awaitable[Page]]
) -> Page:
    """What ``load`` reads, from the catalogue's cache for the public; admins, who see drafts, read it fresh."""
    if sees_drafts(identity):
        return await load()
    page = await ctx.cache.get_or_load(*_CATALOGUE, model, load, field=field, ttl_seconds=CATALOGUE_TTL_SECONDS)
    assert page is not None  # a page is never None, only empty
    return page


async def offer_catalogue(*, ctx: CoursesContext, headers: Headers, identity: Identity | None) -> None:
    """Lets the gateway keep the public's catalogue page or search result until the catalogue changes.

    Not an admin's: admins see drafts, and read the database.
    """
    if not sees_drafts(identity):
        await ctx.cache.stamp(headers, *_CATALOGUE, ttl_seconds=CATALOGUE_TTL_SECONDS)


async def offer_course(*, ctx: CoursesContext, headers: Headers, course_id: uuid.UUID) -> None:
    """Lets the gateway keep a course's page until the course changes (the gateway keeps a copy per role)."""
    await ctx.cache.stamp(headers, "course", course_id, ttl_seconds=ctx.cache.ttl)


async def offer_curriculum(*, ctx: CoursesContext, headers: Headers, grade: Grade) -> None:
    """Lets the gateway keep a grade's syllabus as long as this service keeps it."""
    await ctx.cache.stamp(headers, "curriculum", grade, ttl_seconds=ctx.cache.ttl)


async def list_courses(
    *, db: AsyncSession, ctx: CoursesContext, filters: CourseFilters, identity: Identity | None
) -> CoursePage:
    """Lists a page of the catalogue with its total; the public pages from the cache when it holds them.

    The catalogue is a student's most frequent read (22 of every 72 requests in the academy's
    mix): from the cache it costs a Redis round trip instead of a count, a page query and the ORM.
    Admins, who see drafts, always read the database.
    """

    async def load() -> CoursePage:
        published_only = not sees_drafts(identity)
        courses, total = await repository.list_courses(db=db, filters=filters, published_only=published_only)
        return CoursePage(
            items=[course_summary(c) for c in courses], total=total, limit=filters.limit, offset=filters.offset
        )

    return await _public_copy(ctx, identity, CoursePage, filters.model_dump_json(), load)


async def get_course(
    *, db: AsyncSession, ctx: CoursesContext, course_id: uuid.UUID, identity: Identity | None
) -> CourseDetail:
    """Gets a course with its lessons in order, from the cache when it holds a copy."""

    async def load() -> CourseDetail | None:
        course = await repository.get_course(db=db, course_id=course_id)
        if course is None:
            return None
        return _detail(course, await repository.get_lessons(db=db, course_id=course_id))

    detail = await ctx.cache.get_or_load("course", course_id, CourseDetail, load)
    if detail is None or not (detail.is_published or sees_drafts(identity)):
        raise NotFound("No such course")
    return detail


def _new_lessons(course_id: uuid.UUID, lessons: Sequence[LessonIn], first_position: int = 1) -> list[Lesson]:
    return [
        Lesson(course_id=course_id, position=first_position + i, **item.model_dump()) for i, item in enumerate(lessons)
    ]


async def _flush_or_conflict(db: AsyncSession, rows: Sequence[Any]) -> None:
    try:
        await repository.add(db=db, rows=rows)
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict("Another course already uses this slug") from exc
        raise


async def create_course(*, db: AsyncSession, ctx: CoursesContext, request: CourseCreate) -> CourseDetail:
    """Creates a course with its lessons and indexes it for search."""
    if await repository.slug_taken(db=db, slug=request.slug):
        raise Conflict("Another course already uses this slug")
    fields = request.model_dump(exclude={"lessons"})
    course = Course(id=uuid.uuid4(), seats_taken=0, **fields)
    await _flush_or_conflict(db, [course])
    lessons = _new_lessons(course.id, request.lessons)
    await repository.add(db=db, rows=lessons)
    await ctx.search.index_course(db=db, course_id=course.id)
    await UnitOfWork.of(db).record(CourseCreated(**course_facts(course)))
    if course.is_published:
        await UnitOfWork.of(db).record(CoursePublished(**course_facts(course)))
        await ctx.cache.invalidate(db, *stale_after_change(ctx))
    log.info("course_created", course_id=str(course.id), slug=course.slug)
    return _detail(course, lessons)


async def _replace_lessons(db: AsyncSession, course_id: uuid.UUID, wanted: Sequence[LessonIn]) -> bool:
    """Makes the course's lessons the wanted list, keeping the ids of the positions that stay."""
    existing = list(await repository.get_lessons(db=db, course_id=course_id))
    changed = False
    for lesson, item in zip(existing, wanted, strict=False):
        for field, value in item.model_dump().items():
            if getattr(lesson, field) != value:
                setattr(lesson, field, value)
                changed = True
    dropped = [lesson.id for lesson in existing[len(wanted) :]]
    if dropped:
        if await repository.count_files_of_lessons(db=db, lesson_ids=dropped):
            raise Conflict("Lessons that would be removed still have files; keep them in the list")
        await repository.delete_lessons(db=db, lesson_ids=dropped)
        changed = True
    added = _new_lessons(course_id, wanted[len(existing) :], first_position=len(existing) + 1)
    if added:
        await repository.add(db=db, rows=added)
        changed = True
    return changed


async def update_course(
    *, db: AsyncSession, ctx: CoursesContext, course_id: uuid.UUID, changes: CourseUpdate
) -> CourseDetail:
    """Changes the fields sent, re-indexes the course and drops its cached copy."""
    course = await repository.get_course(db=db, course_id=course_id)
    if course is None:
        raise NotFound("No such course")
    fields = changes.model_dump(exclude_unset=True, exclude={"lessons"})
    if "slug" in fields and await repository.slug_taken(db=db, slug=fields["slug"], other_than=course_id):
        raise Conflict("Another course already uses this slug")
    if fields.get("capacity", course.capacity) < course.seats_taken:
        raise Conflict(f"{course.seats_taken} seats are already taken; capacity cannot go below that")
    was_published = course.is_published
    changed = [field for field, value in fields.items() if getattr(course, field) != value]
    for field in changed:
        setattr(course, field, fields[field])
    if changes.lessons is not None and await _replace_lessons(db, course_id, changes.lessons):
        changed.append("lessons")
    if changed:
        course.updated_at = utcnow()
        await _flush_or_conflict(db, [course])
        await ctx.search.index_course(db=db, course_id=course_id)
        updated = CourseUpdated(**course_facts(course), changed=changed)
        await UnitOfWork.of(db).record(updated)
        if course.is_published and not was_published:
            await UnitOfWork.of(db).record(CoursePublished(**course_facts(course)))
        await ctx.cache.invalidate(db, *stale_after_change(ctx, course_id))
    return _detail(course, await repository.get_lessons(db=db, course_id=course_id))


async def search_courses(
    *, db: AsyncSession, ctx: CoursesContext, query: str, limit: int, identity: Identity | None
) -> SearchResults:
    """Finds courses by words of their title, description or lesson titles; an exact title first.

    The public's results are kept with the catalogue's pages, and dropped with them by any change.
    """
    if not words(query):
        raise InvalidInput("Search for at least one word", errors=[{"field": "q", "message": "no words to search"}])

    async def load() -> SearchResults:
        published_only = not sees_drafts(identity)
        matches = await ctx.search.search(db=db, query=query, published_only=published_only, limit=limit)
        courses = await repository.get_courses(db=db, course_ids=[m.course_id for m in matches])
        hits = [
            SearchHit(**course_summary(courses[m.course_id]).model_dump(), rank=m.rank)
            for m in matches
            if m.course_id in courses
        ]
        return SearchResults(query=query, items=hits)

    return await _public_copy(ctx, identity, SearchResults, f"search:{limit}:{query}", load)


async def get_curriculum(*, db: AsyncSession, ctx: CoursesContext, grade: Grade) -> Curriculum:
    """Gets a grade's units and topics in teaching order, from the cache when it holds a copy."""

    async def load() -> Curriculum | None:
        units: dict[int, Unit] = {}
        for row in await repository.get_curriculum(db=db, grade=grade):
            unit = units.setdefault(
                row.unit_position, Unit(position=row.unit_position, title=row.unit_title, topics=[])
            )
            unit.topics.append(Topic(position=row.topic_position, title=row.topic_title))
        return Curriculum(grade=grade, units=list(units.values())) if units else None

    return await ctx.cache.get_or_load("curriculum", grade, Curriculum, load) or Curriculum(grade=grade, units=[])
