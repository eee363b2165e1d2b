"""Courses' copy of enrolments, filled from the enrollments database for enrolments it never heard of."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from cerebrum.backfill import copy_course_enrolments
from services.courses import repository
from services.courses.app import MIGRATIONS as COURSES_MIGRATIONS
from services.enrollments.app import MIGRATIONS as ENROLLMENTS_MIGRATIONS
from services.enrollments.models import Enrollment
from services.kit.db import Database
from services.kit.migrations import upgrade
from services.kit.time import utcnow


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """The enrollments and courses databases, migrated (SQLite files, as `cerebrum up` keeps them)."""
    enrollments = Database(make_url(f"sqlite+aiosqlite:///{tmp_path}/enrollments.db"), schema=None)
    courses = Database(make_url(f"sqlite+aiosqlite:///{tmp_path}/courses.db"), schema=None)
    await upgrade(enrollments, ENROLLMENTS_MIGRATIONS)
    await upgrade(courses, COURSES_MIGRATIONS)
    try:
        yield enrollments, courses
    finally:
        await enrollments.dispose()
        await courses.dispose()


def enrolment(status: str, **extra: Any) -> Enrollment:
    return Enrollment(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        saga_id=uuid.uuid4(),
        course_title="Genetics",
        status=status,
        amount_paise=1999900,
        **extra,
    )


async def test_enrolments_confirmed_before_courses_listened_open_their_files(
    databases: tuple[Database, Database],
) -> None:
    enrollments, courses = databases
    confirmed, finished = enrolment("confirmed"), enrolment("confirmed", completed_at=utcnow())
    completed = enrolment("confirmed", completed_at=utcnow())
    pending, cancelled = enrolment("pending_payment"), enrolment("cancelled")
    async with enrollments.session_scope() as db:
        db.add_all([confirmed, finished, completed, pending, cancelled])
    # Courses has since heard that one completed enrolment was cancelled: the copy does not reopen it.
    async with courses.session_scope() as db:
        await repository.record_enrolment(
            db=db,
            enrollment_id=completed.id,
            user_id=completed.user_id,
            course_id=completed.course_id,
            status="cancelled",
            at=utcnow(),
        )

    assert await copy_course_enrolments(enrollments=enrollments, courses=courses, batch=2) == 4
    assert await copy_course_enrolments(enrollments=enrollments, courses=courses) == 4  # repeatable

    async with courses.session_scope() as db:
        opened = [
            await repository.is_enrolled(db=db, user_id=e.user_id, course_id=e.course_id)
            for e in (confirmed, finished, completed, pending, cancelled)
        ]
    assert opened == [True, True, False, False, False]
