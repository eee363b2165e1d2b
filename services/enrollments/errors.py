"""The enrolment rules' refusals, each with its own status and problem type."""

from __future__ import annotations

from services.contracts.problems import NO_SEATS_LEFT, REFUND_WINDOW_CLOSED
from services.kit.errors import Conflict, Forbidden, NotFound


class UserNotFound(NotFound):
    type, title = "user-not-found", "No such user"


class AccountNotActive(Forbidden):
    type, title = "account-not-active", "Account not active"


class CourseNotFound(NotFound):
    type, title = "course-not-found", "No such course"


class EnrollmentNotFound(NotFound):
    type, title = "enrollment-not-found", "No such enrolment"


class CourseNotOpen(Conflict):
    type, title = "course-not-open", "Course not open for enrolment"


class NoSeatsLeft(Conflict):
    type, title = NO_SEATS_LEFT, "No seats left"


class AlreadyEnrolled(Conflict):
    type, title = "already-enrolled", "Already enrolled"


class OrderRefused(Conflict):
    type, title = "payment-order-refused", "Payment order refused"


class AlreadyPaid(Conflict):
    type, title = "already-paid", "Already paid"


class NotConfirmed(Conflict):
    type, title = "enrollment-not-confirmed", "Enrolment not confirmed"


class SagaBusy(Conflict):
    type, title = "enrollment-in-progress", "Enrolment in progress"


class TimeSpentDecreased(Conflict):
    type, title = "time-spent-decreased", "Time spent cannot go down"


class RefundWindowClosed(Conflict):
    type, title = REFUND_WINDOW_CLOSED, "Refund window closed"
