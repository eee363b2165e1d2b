from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.contracts.events import CourseCreated, CoursePublished, CourseUpdated
from services.courses.cache import ReadThroughCache
from services.courses.handlers import enrolment_handlers
from services.courses.models import INBOX, OUTBOX
from services.courses.routes import router
from services.courses.search import search_index_for
from services.courses.service import CoursesContext
from services.courses.settings import CoursesSettings
from services.courses.storage import build_storage
from services.kit.app import ServiceKit, build_service_app

PUBLISHES = (CourseCreated, CoursePublished, CourseUpdated)
"""The contracts this service records in its outbox (their counters exist at zero from start-up)."""

MIGRATIONS = Path(__file__).parent / "migrations"


def build_courses_context(kit: ServiceKit, settings: CoursesSettings) -> CoursesContext:
    return CoursesContext(
        settings=settings,
        cache=ReadThroughCache(redis=kit.redis, settings=settings, ttl_seconds=settings.cache_ttl_seconds),
        search=search_index_for(kit.db.engine.dialect.name),
        storage=build_storage(settings),
    )


def create_app(settings: CoursesSettings | None = None) -> FastAPI:
    """Builds the courses service: catalogue, curriculum, lesson files, search and seats."""
    settings = settings or CoursesSettings()
    kit = ServiceKit.build(settings)
    app = build_service_app(
        kit,
        title="Cerebrum courses",
        routers=[router],
        migrations_dir=MIGRATIONS,
        description="The course catalogue, curriculum, lesson files, full-text search and seat reservations.",
        outbox=OUTBOX,
        publishes=PUBLISHES,
        inbox=INBOX,
        handlers=enrolment_handlers(),
        body_limits={"/courses/{course_id}/lessons/{lesson_id}/files": settings.max_upload_bytes},
    )
    app.state.courses = build_courses_context(kit, settings)
    return app
