from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from services.enrollments import progress, service
from services.enrollments.deps import EnrollmentsDep
from services.enrollments.schemas import (
    EnrollmentList,
    EnrollmentOut,
    EnrollmentStarted,
    EnrollmentStatus,
    EnrollRequest,
    ProgressOut,
    ProgressUpdate,
)
from services.kit.deps import CurrentUser, SessionDep

router = APIRouter(tags=["enrollments"])


@router.post("/enrollments", status_code=status.HTTP_201_CREATED)
async def enroll(body: EnrollRequest, identity: CurrentUser, ctx: EnrollmentsDep) -> EnrollmentStarted:
    """Enrols the caller in a course: holds a seat and answers with the payment order to pay.

    The enrolment saga persists each step in its own transaction (a crash resumes it), so this
    route takes no request session.
    """
    return await service.enroll(ctx=ctx, identity=identity, request=body)


@router.get("/enrollments/student/{user_id}")
async def list_enrollments(user_id: uuid.UUID, identity: CurrentUser, db: SessionDep) -> EnrollmentList:
    """Lists a student's enrolments with their progress (the student themself, or an admin)."""
    return await service.list_enrollments(db=db, identity=identity, user_id=user_id)


@router.get("/enrollments/{enrollment_id}/status")
async def get_status(enrollment_id: uuid.UUID, identity: CurrentUser, db: SessionDep) -> EnrollmentStatus:
    """Gets an enrolment's status, its saga's state and steps, and its progress (owner or admin)."""
    return await service.get_status(db=db, identity=identity, enrollment_id=enrollment_id)


@router.put("/enrollments/{enrollment_id}/progress")
async def update_progress(
    enrollment_id: uuid.UUID, body: ProgressUpdate, identity: CurrentUser, db: SessionDep, ctx: EnrollmentsDep
) -> ProgressOut:
    """Records the caller's progress through one lesson of a confirmed enrolment.

    `time_spent_seconds` is the client's running total for the lesson (not a delta), so a retried
    call changes nothing; a total below the recorded one is refused with 409 `time-spent-decreased`
    and a field left out keeps its recorded value. Completing the last lesson completes the course;
    marking a lesson of a completed course not done again makes it incomplete (`course_completed`
    false) until every lesson is done again.
    """
    return await progress.update_progress(db=db, ctx=ctx, identity=identity, enrollment_id=enrollment_id, update=body)


@router.delete("/enrollments/{enrollment_id}")
async def cancel_enrollment(
    enrollment_id: uuid.UUID, identity: CurrentUser, db: SessionDep, ctx: EnrollmentsDep
) -> EnrollmentOut:
    """Cancels an enrolment (owner or admin); a pending one's order is cancelled, any seat released."""
    return await service.cancel_enrollment(db=db, ctx=ctx, identity=identity, enrollment_id=enrollment_id)
