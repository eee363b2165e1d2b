"""What the saga makes of the user and the course it asked for before writing anything."""

from __future__ import annotations

from services.enrollments.ahead import CallsAhead
from services.enrollments.replies import CourseReply, UserReply
from services.enrollments.transitions import Change, advance, course_checked, in_turn


async def checks_passed(ahead: CallsAhead) -> Change | None:
    """The checks that passed, as one change to record with the saga: both when the user is active
    and the course open, the user's alone when only the user passed, None when the user did not.
    The steps after it take the remaining answers, and the first that fails refuses the enrolment."""
    user: UserReply | None = await ahead.settled("user")
    if user is None or user.status != "active":
        return None
    validated = advance("validate_user", "checking_course")
    course: CourseReply | None = await ahead.settled("course")
    if course is None or not (course.is_published and course.is_active):
        return validated
    return in_turn(validated, course_checked(course))


def seats_left(course: CourseReply | None) -> bool:
    """Whether the course, as read when the saga started, had a seat left (unknown: no)."""
    return course is not None and course.seats_left is not None and course.seats_left > 0
