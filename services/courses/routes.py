from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status

from services.courses import content, seats, service
from services.courses.deps import OFFER_CATALOGUE, OFFER_COURSE, OFFER_CURRICULUM, CoursesDep, MaybeUser, UploadDep
from services.courses.schemas import (
    ContentFileOut,
    CourseCreate,
    CourseDetail,
    CourseFilters,
    CoursePage,
    CourseUpdate,
    Curriculum,
    Grade,
    SearchResults,
    SeatReleaseRequest,
    SeatReservationOut,
    SeatReserveRequest,
)
from services.kit.deps import AdminUser, CurrentUser, SessionDep

router = APIRouter()


@router.get("/courses", tags=["courses"], dependencies=[OFFER_CATALOGUE])
async def list_courses(
    filters: Annotated[CourseFilters, Query()], db: SessionDep, ctx: CoursesDep, identity: MaybeUser
) -> CoursePage:
    """Lists the catalogue a page at a time, filtered by grade, subject, price (paise) and whether active."""
    return await service.list_courses(db=db, ctx=ctx, filters=filters, identity=identity)


@router.get("/courses/search", tags=["courses"], dependencies=[OFFER_CATALOGUE])
async def search_courses(
    q: Annotated[str, Query(min_length=1, max_length=200)],
    db: SessionDep,
    ctx: CoursesDep,
    identity: MaybeUser,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchResults:
    """Searches course titles, descriptions and lesson titles; an exact title match comes first."""
    return await service.search_courses(db=db, ctx=ctx, query=q, limit=limit, identity=identity)


@router.get("/courses/{course_id}", tags=["courses"], dependencies=[OFFER_COURSE])
async def get_course(course_id: uuid.UUID, db: SessionDep, ctx: CoursesDep, identity: MaybeUser) -> CourseDetail:
    """Gets a course with its lessons in order."""
    return await service.get_course(db=db, ctx=ctx, course_id=course_id, identity=identity)


@router.post("/courses", status_code=status.HTTP_201_CREATED, tags=["courses"])
async def create_course(body: CourseCreate, _admin: AdminUser, db: SessionDep, ctx: CoursesDep) -> CourseDetail:
    """Creates a course with its lessons (admins)."""
    return await service.create_course(db=db, ctx=ctx, request=body)


@router.put("/courses/{course_id}", tags=["courses"])
async def update_course(
    course_id: uuid.UUID, body: CourseUpdate, _admin: AdminUser, db: SessionDep, ctx: CoursesDep
) -> CourseDetail:
    """Changes the fields sent; ``lessons``, when sent, replaces the lesson list (admins)."""
    return await service.update_course(db=db, ctx=ctx, course_id=course_id, changes=body)


@router.get("/curriculum/{grade}", tags=["curriculum"], dependencies=[OFFER_CURRICULUM])
async def get_curriculum(grade: Grade, db: SessionDep, ctx: CoursesDep) -> Curriculum:
    """Gets a grade's syllabus: units and their topics, in teaching order."""
    return await service.get_curriculum(db=db, ctx=ctx, grade=grade)


@router.post(
    "/courses/{course_id}/lessons/{lesson_id}/files",
    status_code=status.HTTP_201_CREATED,
    tags=["content"],
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def upload_file(
    course_id: uuid.UUID, lesson_id: uuid.UUID, _admin: AdminUser, upload: UploadDep, db: SessionDep, ctx: CoursesDep
) -> ContentFileOut:
    """Attaches a file to a lesson: the raw bytes as the body, the name in ``X-Filename`` (admins)."""
    return await content.attach_file(db=db, ctx=ctx, course_id=course_id, lesson_id=lesson_id, upload=upload)


@router.get(
    "/courses/{course_id}/lessons/{lesson_id}/files/{file_id}",
    tags=["content"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_file(
    course_id: uuid.UUID,
    lesson_id: uuid.UUID,
    file_id: uuid.UUID,
    identity: CurrentUser,
    db: SessionDep,
    ctx: CoursesDep,
) -> Response:
    """Downloads a lesson's file (admins, and students with a confirmed enrolment in the course)."""
    meta, data = await content.read_file(
        db=db, ctx=ctx, course_id=course_id, lesson_id=lesson_id, file_id=file_id, identity=identity
    )
    return Response(
        data,
        media_type=meta.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(meta.filename)}",
            "ETag": f'"{meta.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/courses/{course_id}/seats/reserve", tags=["seats"])
async def reserve_seat(
    course_id: uuid.UUID, body: SeatReserveRequest, _admin: AdminUser, db: SessionDep, ctx: CoursesDep
) -> SeatReservationOut:
    """Holds a seat for a student, once per reservation id; 409 when no seat is left (the enrolment saga)."""
    return await seats.reserve_seat(db=db, ctx=ctx, course_id=course_id, request=body)


@router.post("/courses/{course_id}/seats/release", tags=["seats"])
async def release_seat(
    course_id: uuid.UUID, body: SeatReleaseRequest, _admin: AdminUser, db: SessionDep, ctx: CoursesDep
) -> SeatReservationOut:
    """Frees a held seat; releasing again is harmless (the enrolment saga's compensation)."""
    return await seats.release_seat(db=db, ctx=ctx, course_id=course_id, request=body)
