"""Lesson files: bytes to content storage, their description (size, type, SHA-256) to the database."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.courses import repository
from services.courses.models import ContentFile, Lesson
from services.courses.schemas import ContentFileOut
from services.courses.service import CoursesContext, sees_drafts
from services.kit.auth import Identity
from services.kit.errors import Forbidden, NotFound
from services.kit.time import as_utc


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: a safe base name, a media type and the bytes."""

    filename: str
    content_type: str
    data: bytes


def _out(row: ContentFile) -> ContentFileOut:
    return ContentFileOut(
        id=row.id,
        lesson_id=row.lesson_id,
        filename=row.filename,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        created_at=as_utc(row.created_at),
    )


async def _lesson(db: AsyncSession, course_id: uuid.UUID, lesson_id: uuid.UUID, *, drafts_visible: bool) -> Lesson:
    course = await repository.get_course(db=db, course_id=course_id)
    if course is None or not (course.is_published or drafts_visible):
        raise NotFound("No such course")
    lesson = await repository.get_lesson(db=db, course_id=course_id, lesson_id=lesson_id)
    if lesson is None:
        raise NotFound("No such lesson in this course")
    return lesson


async def attach_file(
    *, db: AsyncSession, ctx: CoursesContext, course_id: uuid.UUID, lesson_id: uuid.UUID, upload: Upload
) -> ContentFileOut:
    """Stores a lesson's file and records what it is."""
    lesson = await _lesson(db, course_id, lesson_id, drafts_visible=True)
    file_id = uuid.uuid4()
    # The key names no user input: a filename never becomes a path.
    storage_key = f"courses/{course_id}/lessons/{lesson.id}/{file_id}"
    # Bytes first: a crash in between leaves an unreferenced blob, never a row without content.
    await ctx.storage.put(storage_key, upload.data, content_type=upload.content_type)
    row = ContentFile(
        id=file_id,
        lesson_id=lesson.id,
        filename=upload.filename,
        content_type=upload.content_type,
        size_bytes=len(upload.data),
        sha256=hashlib.sha256(upload.data).hexdigest(),
        storage_key=storage_key,
    )
    await repository.add(db=db, rows=[row])
    return _out(row)


async def read_file(
    *,
    db: AsyncSession,
    ctx: CoursesContext,
    course_id: uuid.UUID,
    lesson_id: uuid.UUID,
    file_id: uuid.UUID,
    identity: Identity,
) -> tuple[ContentFileOut, bytes]:
    """Reads a lesson's file, for admins and students with a confirmed enrolment in its course."""
    await _lesson(db, course_id, lesson_id, drafts_visible=sees_drafts(identity))
    if not identity.is_admin and not await repository.is_enrolled(db=db, user_id=identity.user_id, course_id=course_id):
        raise Forbidden(
            "Lesson files are for students enrolled in this course; they open once the enrolment is confirmed"
        )
    row = await repository.get_file(db=db, lesson_id=lesson_id, file_id=file_id)
    if row is None:
        raise NotFound("No such file in this lesson")
    return _out(row), await ctx.storage.get(row.storage_key)
