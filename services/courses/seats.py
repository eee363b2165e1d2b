"""Seats: the enrolment saga reserves one per student and releases it when the enrolment fails.

A course is never oversold: a seat is taken by one conditional UPDATE (``seats_taken < capacity``),
which the database serialises on the course row. The reservation id makes both calls idempotent:
a repeated reserve returns the seat it already holds, a repeated release changes nothing, and a
release that arrives before its reserve leaves a tombstone so that the late reserve is refused.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter
from services.contracts.problems import NO_SEATS_LEFT
from services.courses import repository
from services.courses.models import Course, SeatReservation
from services.courses.schemas import SeatReleaseRequest, SeatReservationOut, SeatReserveRequest
from services.courses.service import CoursesContext, seats_changed
from services.kit.db import is_foreign_key_violation
from services.kit.errors import Conflict, NotFound
from services.kit.time import utcnow

SEATS = counter(
    "cerebrum_seat_reservations_total",
    "Seat reservation calls by outcome (reserved, replayed, full, refused, released, release_replayed).",
    ("service", "outcome"),
)
log = structlog.get_logger("cerebrum.courses.seats")


class NoSeatsLeft(Conflict):
    type, title = NO_SEATS_LEFT, "No seats left"


def _out(reservation: SeatReservation, seats_left: int) -> SeatReservationOut:
    return SeatReservationOut(
        reservation_id=reservation.reservation_id,
        course_id=reservation.course_id,
        student_id=reservation.student_id,
        status=reservation.status,  # type: ignore[arg-type]
        seats_left=seats_left,
    )


async def _course(db: AsyncSession, course_id: uuid.UUID) -> Course:
    course = await repository.get_course(db=db, course_id=course_id)
    if course is None:
        raise NotFound("No such course")
    return course


def _replay(ctx: CoursesContext, existing: SeatReservation, course_id: uuid.UUID, student_id: uuid.UUID) -> None:
    """Accepts a repeated reserve; refuses one that reuses the id for something else, or after its release."""
    refusal = None
    if existing.course_id != course_id or existing.student_id not in (student_id, None):
        refusal = "This reservation id is already used for another course or student"
    elif existing.status != "held":
        refusal = "This reservation was already released; use a new reservation id"
    SEATS.labels(ctx.settings.service_name, "refused" if refusal else "replayed").inc()
    if refusal:
        raise Conflict(refusal)


async def reserve_seat(
    *, db: AsyncSession, ctx: CoursesContext, course_id: uuid.UUID, request: SeatReserveRequest
) -> SeatReservationOut:
    """Holds one seat for a student, once per reservation id; refuses when the course is full.

    Two statements in the common case: the reservation, inserted unless its id is known already,
    then the seat, taken if the course is open and has one left. A refusal rolls both back; only
    then is the course read, to say why.
    """
    try:
        new = await repository.insert_reservation_once(
            db=db,
            reservation_id=request.reservation_id,
            course_id=course_id,
            student_id=request.student_id,
            status="held",
            at=utcnow(),
        )
    except IntegrityError as exc:
        if not is_foreign_key_violation(exc):
            raise
        raise NotFound("No such course") from None
    if not new:
        # A repeated call (or a concurrent one with the same id that inserted first): its seat.
        existing = await repository.get_reservation(db=db, reservation_id=request.reservation_id)
        assert existing is not None
        _replay(ctx, existing, course_id, request.student_id)
        return _out(existing, await repository.seats_left(db=db, course_id=course_id))
    seats_left = await repository.take_seat(db=db, course_id=course_id)
    if seats_left is None:
        if not (await _course(db, course_id)).is_active:
            raise Conflict("This course is not open for enrolment")
        SEATS.labels(ctx.settings.service_name, "full").inc()
        raise NoSeatsLeft("No seats left on this course", course_id=str(course_id))
    SEATS.labels(ctx.settings.service_name, "reserved").inc()
    await seats_changed(ctx=ctx, db=db, course_id=course_id, full_or_opened=seats_left == 0)
    return SeatReservationOut(
        reservation_id=request.reservation_id,
        course_id=course_id,
        student_id=request.student_id,
        status="held",
        seats_left=seats_left,
    )


async def release_seat(
    *, db: AsyncSession, ctx: CoursesContext, course_id: uuid.UUID, request: SeatReleaseRequest
) -> SeatReservationOut:
    """Frees a held seat; releasing again, or before the reserve arrived, changes nothing more."""
    await _course(db, course_id)
    now = utcnow()
    if await repository.mark_released(db=db, reservation_id=request.reservation_id, course_id=course_id, at=now):
        seats_left = await repository.give_back_seat(db=db, course_id=course_id)
        await seats_changed(ctx=ctx, db=db, course_id=course_id, full_or_opened=seats_left <= 1)
        SEATS.labels(ctx.settings.service_name, "released").inc()
    else:
        existing = await repository.get_reservation(db=db, reservation_id=request.reservation_id)
        if existing is not None and existing.course_id != course_id:
            raise Conflict("This reservation id belongs to another course")
        if existing is None:
            tombstone = await repository.insert_reservation_once(
                db=db,
                reservation_id=request.reservation_id,
                course_id=course_id,
                student_id=None,
                status="released",
                at=now,
            )
            if not tombstone:
                # A reserve committed in between: release what it holds.
                return await release_seat(db=db, ctx=ctx, course_id=course_id, request=request)
            log.info("seat_released_before_reserved", reservation_id=str(request.reservation_id))
        elif existing.status == "held":
            # Reserved by a call that committed after this release began: release it now.
            return await release_seat(db=db, ctx=ctx, course_id=course_id, request=request)
        seats_left = await repository.seats_left(db=db, course_id=course_id)
        SEATS.labels(ctx.settings.service_name, "release_replayed").inc()
    reservation = await repository.get_reservation(db=db, reservation_id=request.reservation_id)
    assert reservation is not None
    return _out(reservation, seats_left)
