"""The enrolment saga: validate the user, check the course, reserve a seat, create the enrolment,
create the payment order, then wait for the payment; on a failure, compensate in reverse.

Each step that may hold something runs in its own transaction and moves the persisted state on,
so that a saga cut short by a crash is resumed by the recovery loop (the user and course checks,
which hold nothing, are recorded with the saga itself). Every remote call can be repeated safely:
the saga's id is the seat reservation id and the order's idempotency key. Every state change
locks the saga's row and checks the state it expects, so that a request, an event handler and the
recovery loop (of any replica) can meet on one saga without undoing each other's work.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Collection, Iterator
from contextlib import contextmanager, suppress

import structlog
from sqlalchemy.exc import IntegrityError

from services.enrollments import repository
from services.enrollments.ahead import CallsAhead
from services.enrollments.errors import (
    AccountNotActive,
    AlreadyEnrolled,
    AlreadyPaid,
    CourseNotFound,
    CourseNotOpen,
    SagaBusy,
)
from services.enrollments.models import Enrollment, EnrollmentSagaRecord
from services.enrollments.reads import checks_passed, seats_left
from services.enrollments.refunds import needs_refund, refunded_and_cancelled
from services.enrollments.replies import OrderReply, RefundReply
from services.enrollments.settings import EnrollmentsSettings
from services.enrollments.telemetry import saga_attributes, spanned, tracer
from services.enrollments.transitions import (
    AWAITING_PAYMENT,
    COMPENSATING,
    FORWARD_STEPS,
    Change,
    advance,
    awaiting_payment,
    cancel_enrollment,
    course_checked,
    create_pending_enrollment,
    in_turn,
    log_step,
    order_cancelled,
    order_kept,
    ordered,
    revert_paid,
    seat_released,
    start_compensating,
)
from services.enrollments.upstreams import Upstreams
from services.kit.db import Database, is_unique_violation
from services.kit.errors import DependencyUnavailable, DomainError
from services.kit.time import utcnow

log = structlog.get_logger("cerebrum.enrollments.saga")
NOTHING_HELD_YET = ("validating_user", "checking_course")


class SagaMovedOn(Exception):
    """Someone else (an event handler, another replica) changed the saga first."""

    def __init__(self, saga: EnrollmentSagaRecord) -> None:
        super().__init__(f"saga {saga.id} is {saga.state}/{saga.step}")
        self.saga = saga


class EnrollmentSaga:
    """Runs enrolment sagas forward, and their compensations backward."""

    def __init__(self, *, db: Database, upstreams: Upstreams, settings: EnrollmentsSettings) -> None:
        self.db = db
        self.upstreams = upstreams
        self.settings = settings
        self._driving_now: Counter[uuid.UUID] = Counter()

    @property
    def active(self) -> Collection[uuid.UUID]:
        """The sagas this process is driving right now (the recovery loop leaves them alone)."""
        return set(self._driving_now)

    @contextmanager
    def _driving(self, saga_id: uuid.UUID) -> Iterator[None]:
        self._driving_now[saga_id] += 1
        try:
            yield
        finally:
            self._driving_now[saga_id] -= 1
            if self._driving_now[saga_id] <= 0:
                del self._driving_now[saga_id]

    async def start(self, *, user_id: uuid.UUID, course_id: uuid.UUID) -> EnrollmentSagaRecord:
        """Runs a new saga up to the payment order; compensates and raises when a step fails.

        The user and the course are asked for at once, before anything is written: until a seat is
        held a saga holds nothing, so a crash before then loses nothing the student's retry would
        not redo. When both answer well, the saga is recorded with both checks done in one
        transaction, which also refuses a second active enrolment; any other answer is recorded
        first and refused by its own step, as a saga started afresh would be.
        """
        saga_id, now = uuid.uuid4(), utcnow()
        saga = EnrollmentSagaRecord(
            id=saga_id,
            enrollment_id=uuid.uuid4(),
            user_id=user_id,
            course_id=course_id,
            state="validating_user",
            step="validate_user",
            attempts=0,
            paid_after_cancel=False,
            created_at=now,
            updated_at=now,
        )
        with self._driving(saga_id), CallsAhead() as ahead:
            with tracer.start_as_current_span("saga.validate_user", attributes=saga_attributes(saga)):
                ahead.start("user", self.upstreams.get_user(user_id))
                ahead.start("course", self.upstreams.get_course(course_id))
                checked = await checks_passed(ahead)
                async with self.db.session_scope() as db:
                    existing = await repository.active_enrollment(db=db, user_id=user_id, course_id=course_id)
                    if existing is not None:
                        raise AlreadyEnrolled(
                            "You already have an active enrolment in this course", enrollment_id=str(existing.id)
                        )
                    # Written at commit with the checks' steps: one INSERT, not an INSERT then an UPDATE.
                    db.add(saga)
                    if checked is not None:
                        with tracer.start_as_current_span("saga.check_course", attributes=saga_attributes(saga)):
                            await checked(db, saga)
            log.info("saga_started", saga_id=str(saga_id), course_id=str(course_id))
            return await self._forward_steps(saga, ahead, compensate_on_outage=True)

    async def resume(self, saga_id: uuid.UUID) -> EnrollmentSagaRecord:
        """Drives a stuck saga on from where it stopped, or on with its compensation."""
        with self._driving(saga_id):
            saga = await self._load(saga_id)
            log.info("saga_resumed", saga_id=str(saga_id), state=saga.state, attempts=saga.attempts)
            if saga.state in NOTHING_HELD_YET:
                # Nothing to undo, and nobody waits for it: the student's retry starts afresh.
                await self._turn_round(saga_id, reason="interrupted")
                return await self._load(saga_id)
            if saga.state in FORWARD_STEPS:
                if saga.attempts > self.settings.saga_max_attempts:
                    await self._turn_round(saga_id, reason="gave_up")
                    return await self._load(saga_id)
                # A seat may be held: keep it for the student by finishing the saga.
                return await self._forward(saga_id, compensate_on_outage=False)
            if saga.state == COMPENSATING:
                return await self.compensate(saga_id)
            return saga

    async def cancel(self, *, saga_id: uuid.UUID, reason: str) -> EnrollmentSagaRecord:
        """Cancels an enrolment: an unpaid one is compensated; a paid one is refunded first, then
        cancelled and its seat freed (outside the refund window nothing changes: ``refunds.py``)."""
        with self._driving(saga_id):
            saga = await self._load(saga_id)
            while saga.state in (AWAITING_PAYMENT, "confirmed"):
                try:
                    if saga.state == AWAITING_PAYMENT:
                        saga = await self._change(saga_id, (AWAITING_PAYMENT,), start_compensating(reason))
                    else:
                        refund = await self._refund(saga, reason) if needs_refund(saga) else None
                        saga = await self._change(saga_id, ("confirmed",), refunded_and_cancelled(reason, refund))
                except SagaMovedOn as moved:  # paid or cancelled meanwhile: decide again
                    saga = moved.saga
            if saga.state in FORWARD_STEPS:
                raise SagaBusy("This enrolment is still being set up; try again in a moment")
            return await self.compensate(saga_id) if saga.state == COMPENSATING else saga

    async def compensate(self, saga_id: uuid.UUID) -> EnrollmentSagaRecord:
        """Runs the remaining compensations: cancel the order, cancel the enrolment, release the seat."""
        saga = await self._load(saga_id)
        while saga.state == COMPENSATING:
            step = saga.step
            try:
                with tracer.start_as_current_span(f"saga.{step}", attributes=saga_attributes(saga)):
                    saga = await self._compensation(step, saga)
            except SagaMovedOn as moved:
                saga = moved.saga
            except DependencyUnavailable as exc:
                await self._note(saga_id, step, "unavailable", exc.detail)
                raise
        return saga

    async def _refund(self, saga: EnrollmentSagaRecord, reason: str) -> RefundReply:
        """Asks payments for the refund; a refusal or an outage leaves the saga as it was."""
        assert saga.order_id is not None
        try:
            with tracer.start_as_current_span("saga.refund_payment", attributes=saga_attributes(saga)):
                return await self.upstreams.refund_order(saga.order_id, reason=reason)
        except DependencyUnavailable as exc:
            await self._note(saga.id, "refund_payment", "unavailable", exc.detail)
            raise
        except DomainError as exc:
            log.info("saga_refund_refused", saga_id=str(saga.id), problem=exc.type)
            raise

    async def find(self, enrollment_id: uuid.UUID) -> tuple[EnrollmentSagaRecord | None, Enrollment | None]:
        """Gets the saga of an enrolment, and the enrolment when it was created."""
        async with self.db.session_scope() as db:
            saga = await repository.saga_of_enrollment(db=db, enrollment_id=enrollment_id)
            enrollment = await repository.get_enrollment(db=db, enrollment_id=enrollment_id)
        return saga, enrollment

    # Forward -----------------------------------------------------------------------------------
    async def _forward(self, saga_id: uuid.UUID, *, compensate_on_outage: bool) -> EnrollmentSagaRecord:
        saga = await self._load(saga_id)
        with CallsAhead() as ahead:
            return await self._forward_steps(saga, ahead, compensate_on_outage=compensate_on_outage)

    async def _forward_steps(
        self, saga: EnrollmentSagaRecord, ahead: CallsAhead, *, compensate_on_outage: bool
    ) -> EnrollmentSagaRecord:
        saga_id = saga.id
        while saga.state in FORWARD_STEPS:
            step = FORWARD_STEPS[saga.state]
            if step == "reserve_seat" and seats_left(await ahead.settled("course")):
                # The order needs nothing the seat decides: asked for alongside it, it is recorded
                # with the seat and the enrolment (one round of calls and one transaction less on
                # the student's wait). A course that had no seat left is not worth an order.
                ahead.start("order", spanned("saga.create_order", saga, self._create_order(saga)))
            try:
                with tracer.start_as_current_span(f"saga.{step}", attributes=saga_attributes(saga)):
                    saga = await self._step(step, saga, ahead)
            except SagaMovedOn as moved:
                saga = moved.saga
            except DependencyUnavailable as exc:
                await self._note(saga_id, step, "unavailable", exc.detail)
                if compensate_on_outage:
                    await self._turn_round(saga_id, reason=f"{exc.extensions['dependency']}_unavailable")
                raise
            except DomainError as exc:
                await self._note(saga_id, step, "refused", exc.detail)
                # A refused reserve holds no seat; any other refusal comes before or after it.
                await self._turn_round(saga_id, reason=exc.type, seat_held=step != "reserve_seat")
                raise
        return saga

    async def _step(self, step: str, saga: EnrollmentSagaRecord, ahead: CallsAhead) -> EnrollmentSagaRecord:
        up = self.upstreams
        if step == "validate_user":
            user = await ahead.take("user", lambda: up.get_user(saga.user_id))
            if user.status != "active":
                raise AccountNotActive("This account is not active")
            return await self._change(saga.id, ("validating_user",), advance("validate_user", "checking_course"))
        if step == "check_course":
            course = await ahead.take("course", lambda: up.get_course(saga.course_id))
            if not course.is_published:
                raise CourseNotFound("No such course", course_id=str(saga.course_id))
            if not course.is_active:
                raise CourseNotOpen("This course is not open for enrolment")
            return await self._change(saga.id, ("checking_course",), course_checked(course))
        if step == "reserve_seat":
            try:
                await up.reserve_seat(course_id=saga.course_id, reservation_id=saga.id, student_id=saga.user_id)
            except Exception:
                await self._keep_order_made_ahead(saga.id, ahead)  # for the compensation to cancel
                raise
            seat_held = advance("reserve_seat", "creating_enrollment")
            order: OrderReply | None = await ahead.settled("order")
            created = (
                create_pending_enrollment
                if order is None
                else in_turn(order_kept(order), create_pending_enrollment, awaiting_payment)
            )

            # The enrolment needs nothing from outside: it is created in the transaction that records
            # the seat (one transaction less on the student's wait), with the order when it came.
            # A second active enrolment rolls them back; then the seat (and the order) are recorded
            # alone and the next step refuses the enrolment, so both are undone as before.
            try:
                return await self._change(saga.id, ("reserving_seat",), in_turn(seat_held, created))
            except IntegrityError as exc:
                if not is_unique_violation(exc):
                    raise
            return await self._change(
                saga.id, ("reserving_seat",), seat_held if order is None else in_turn(seat_held, order_kept(order))
            )
        if step == "create_enrollment":
            try:
                return await self._change(saga.id, ("creating_enrollment",), create_pending_enrollment)
            except IntegrityError as exc:
                if not is_unique_violation(exc):
                    raise
                raise AlreadyEnrolled("You already have an active enrolment in this course") from None
        # An order asked for alongside the seat answers here if it failed (its failure is this step's).
        made = await ahead.take("order", lambda: self._create_order(saga))
        return await self._change(saga.id, ("creating_order",), ordered(made))

    def _create_order(self, saga: EnrollmentSagaRecord) -> Awaitable[OrderReply]:
        """Asks payments for the enrolment's order; the saga's id makes asking again harmless."""
        return self.upstreams.create_order(
            saga_id=saga.id,
            user_id=saga.user_id,
            enrollment_id=saga.enrollment_id,
            course_id=saga.course_id,
            amount_paise=saga.amount_paise or 0,
            currency=saga.currency,
            description=f"Enrolment: {saga.course_title or saga.course_id}"[:200],
        )

    async def _keep_order_made_ahead(self, saga_id: uuid.UUID, ahead: CallsAhead) -> None:
        """Records an order made alongside a seat that was not taken, so that compensating cancels it."""
        order: OrderReply | None = await ahead.settled("order")
        if order is not None:
            with suppress(SagaMovedOn):
                await self._change(saga_id, ("reserving_seat",), order_kept(order))

    async def _turn_round(self, saga_id: uuid.UUID, *, reason: str, seat_held: bool = True) -> None:
        """Starts compensating a saga going forward; what cannot be compensated now is left to recovery."""
        try:
            await self._change(saga_id, tuple(FORWARD_STEPS), start_compensating(reason, seat_held=seat_held))
            await self.compensate(saga_id)
        except SagaMovedOn:
            return
        except DomainError as exc:
            log.warning("saga_compensation_incomplete", saga_id=str(saga_id), error=exc.detail)

    # Backward ----------------------------------------------------------------------------------
    async def _compensation(self, step: str, saga: EnrollmentSagaRecord) -> EnrollmentSagaRecord:
        if step == "cancel_order":
            if saga.order_id is not None and not await self.upstreams.cancel_order(saga.order_id):
                with suppress(SagaMovedOn):  # the payment's confirmation came first
                    await self._change(saga.id, (COMPENSATING,), revert_paid, step="cancel_order")
                raise AlreadyPaid("This enrolment is paid already; it will be confirmed shortly")
            return await self._change(saga.id, (COMPENSATING,), order_cancelled, step="cancel_order")
        if step == "cancel_enrollment":
            return await self._change(saga.id, (COMPENSATING,), cancel_enrollment, step="cancel_enrollment")
        if saga.reservation_id is not None:
            await self.upstreams.release_seat(course_id=saga.course_id, reservation_id=saga.reservation_id)
        return await self._change(saga.id, (COMPENSATING,), seat_released, step="release_seat")

    # State -------------------------------------------------------------------------------------
    async def _load(self, saga_id: uuid.UUID) -> EnrollmentSagaRecord:
        async with self.db.session_scope() as db:
            saga = await repository.get_saga(db=db, saga_id=saga_id)
        if saga is None:
            raise LookupError(f"no saga {saga_id}")
        return saga

    async def _change(
        self, saga_id: uuid.UUID, states: tuple[str, ...], change: Change, *, step: str | None = None
    ) -> EnrollmentSagaRecord:
        """Applies a change to the saga in one transaction, if it is still where the caller left it."""
        async with self.db.session_scope() as db:
            saga = await repository.get_saga(db=db, saga_id=saga_id, lock=True)
            if saga is None:
                raise LookupError(f"no saga {saga_id}")
            moved = saga.state not in states or (step is not None and saga.step != step)
            if not moved:
                await change(db, saga)
                saga.updated_at = utcnow()
        if moved:
            raise SagaMovedOn(saga)
        return saga

    async def _note(self, saga_id: uuid.UUID, step: str, outcome: str, detail: str) -> None:
        """Logs a failed step on the saga; its state stays where it was."""
        log.warning("saga_step_failed", saga_id=str(saga_id), step=step, outcome=outcome, detail=detail)
        async with self.db.session_scope() as db:
            saga = await repository.get_saga(db=db, saga_id=saga_id, lock=True)
            if saga is not None:
                await log_step(db, saga, step, outcome, detail)
                saga.last_error = f"{step}: {detail}"[:500]
                saga.updated_at = utcnow()
