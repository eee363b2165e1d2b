"""Progress through a course, lesson by lesson: completing the last lesson completes the course,
and marking one not done again reopens it. Time per lesson is a running total that only grows."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import EnrollmentCompleted, EnrollmentReopened, ProgressUpdated
from services.enrollments import repository
from services.enrollments.errors import EnrollmentNotFound, NotConfirmed, TimeSpentDecreased
from services.enrollments.models import Enrollment
from services.enrollments.schemas import ProgressOut, ProgressUpdate
from services.enrollments.service import EnrollmentsContext
from services.kit.auth import Identity
from services.kit.errors import Forbidden, InvalidInput
from services.kit.time import utcnow
from services.kit.uow import UnitOfWork


async def _own_confirmed(db: AsyncSession, identity: Identity, enrollment_id: uuid.UUID, *, lock: bool) -> Enrollment:
    enrollment = await repository.get_enrollment(db=db, enrollment_id=enrollment_id, lock=lock)
    if enrollment is None:
        raise EnrollmentNotFound("No such enrolment")
    if enrollment.user_id != identity.user_id:
        raise Forbidden("You can only record progress in your own enrolments")
    if enrollment.status != "confirmed":
        raise NotConfirmed(
            f"Progress is recorded for confirmed enrolments; this one is {enrollment.status}",
            enrollment_status=enrollment.status,
        )
    return enrollment


async def _course_lesson_ids(ctx: EnrollmentsContext, course_id: uuid.UUID, lesson_id: uuid.UUID) -> list[str]:
    """The course's lesson ids as the courses service has them now; the lesson must be one of them."""
    ids = (await ctx.upstreams.get_course(course_id)).lesson_ids()
    if str(lesson_id) not in ids:
        raise InvalidInput(
            "This lesson is not part of the course", errors=[{"field": "lesson_id", "message": "not in this course"}]
        )
    return ids


async def update_progress(
    *, db: AsyncSession, ctx: EnrollmentsContext, identity: Identity, enrollment_id: uuid.UUID, update: ProgressUpdate
) -> ProgressOut:
    """Records the caller's progress through one lesson; the course's completion follows its lessons."""
    # Locked: one update at a time per enrolment. A lesson the enrolment already knows (the saga
    # kept the course's lessons) needs nothing else; for a new one, courses is asked again, and no
    # lock is held during a call: the transaction, which has written nothing, ends first.
    enrollment = await _own_confirmed(db, identity, enrollment_id, lock=True)
    lesson_ids = enrollment.lesson_ids
    if lesson_ids is None or str(update.lesson_id) not in lesson_ids:
        course_id = enrollment.course_id
        await UnitOfWork.of(db).rollback()
        lesson_ids = await _course_lesson_ids(ctx, course_id, update.lesson_id)
        enrollment = await _own_confirmed(db, identity, enrollment_id, lock=True)
        enrollment.lesson_ids = lesson_ids
    now = utcnow()
    before = await repository.get_progress(db=db, enrollment_id=enrollment_id, lesson_id=update.lesson_id)
    before = before or repository.LessonProgress(completed=False, time_spent_seconds=0, completed_at=None)
    completed = before.completed if update.completed is None else update.completed
    seconds = before.time_spent_seconds if update.time_spent_seconds is None else update.time_spent_seconds
    if seconds < before.time_spent_seconds:
        raise TimeSpentDecreased(
            f"time_spent_seconds is this lesson's running total; {before.time_spent_seconds} s are recorded "
            f"and {seconds} s would lose time",
            recorded_seconds=before.time_spent_seconds,
        )
    added = seconds - before.time_spent_seconds
    changed = completed != before.completed or added > 0
    completed_at = (before.completed_at or now) if completed else None
    after = repository.LessonProgress(completed=completed, time_spent_seconds=seconds, completed_at=completed_at)
    await repository.save_progress(
        db=db, enrollment_id=enrollment_id, lesson_id=update.lesson_id, progress=after, at=now
    )
    done, course_seconds = await repository.lesson_totals(db=db, enrollment_id=enrollment_id, lesson_ids=lesson_ids)
    total = len(lesson_ids)
    percent = round(100 * done / total, 2)
    uow = UnitOfWork.of(db)
    if changed:
        payload = ProgressUpdated(
            enrollment_id=enrollment_id,
            user_id=enrollment.user_id,
            course_id=enrollment.course_id,
            lesson_id=update.lesson_id,
            percent=percent,
            time_spent_seconds=seconds,
            time_added_seconds=added,
            completed_lessons=done,
            total_lessons=total,
        )
        await uow.record(payload)
    if done == total and enrollment.completed_at is None:
        if await repository.add_completion_once(
            db=db,
            enrollment_id=enrollment_id,
            user_id=enrollment.user_id,
            course_id=enrollment.course_id,
            total_time_seconds=course_seconds,
            at=now,
        ):
            enrollment.completed_at = now
            finished = EnrollmentCompleted(
                enrollment_id=enrollment_id,
                user_id=enrollment.user_id,
                course_id=enrollment.course_id,
                completed_at=now,
                course_title=enrollment.course_title,
            )
            await uow.record(finished)
    elif done < total and enrollment.completed_at is not None:
        # A lesson marked not done again: the course is in progress again until it is finished anew.
        await repository.remove_completion(db=db, enrollment_id=enrollment_id)
        enrollment.completed_at = None
        reopened = EnrollmentReopened(
            enrollment_id=enrollment_id,
            user_id=enrollment.user_id,
            course_id=enrollment.course_id,
            completed_lessons=done,
            total_lessons=total,
        )
        await uow.record(reopened)
    return ProgressOut(
        enrollment_id=enrollment_id,
        lesson_id=update.lesson_id,
        completed=completed,
        time_spent_seconds=seconds,
        progress_percent=percent,
        completed_lessons=done,
        total_lessons=total,
        course_completed=enrollment.completed_at is not None,
    )
