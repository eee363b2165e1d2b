"""Problem types one service answers and another acts on: the refusals that cross a service boundary.

The slug is the last part of the problem's ``type`` (``observability.problems.problem_type``); the
service that refuses raises an error of this type, the caller compares the type it reads with it.
"""

from __future__ import annotations

NO_SEATS_LEFT = "no-seats-left"
"""courses refuses to hold a seat because the course is full (the enrolment saga stops there)."""

REFUND_WINDOW_CLOSED = "refund-window-closed"
"""payments refuses a refund because the payment is older than the academy's refund window (the
enrolment's cancellation stops there, before anything changed)."""
