"""Where problem types live: every problem+json body names its type under one base URL.

Here rather than in the service kit because the telemetry middleware answers the last-resort 500
itself, below the kit's handlers, and the kit's errors build on this.
"""

from __future__ import annotations

PROBLEM_TYPE_BASE = "https://cerebrum.academy/problems/"
PROBLEM_JSON = "application/problem+json"


def problem_type(slug: str) -> str:
    """The URL of a problem type (``problem_type("not-found")``); full URLs pass through."""
    return slug if slug.startswith(("https://", "http://", "about:")) else PROBLEM_TYPE_BASE + slug
