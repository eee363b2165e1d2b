"""The facts of a course its events carry (``services.contracts.events.CourseChanged``)."""

from __future__ import annotations

from typing import Any

from services.courses.models import Course


def course_facts(course: Course) -> dict[str, Any]:
    """The public facts of a course that other services may keep a copy of."""
    return {
        "course_id": course.id,
        "slug": course.slug,
        "title": course.title,
        "subject": course.subject,
        "grade": course.grade,
        "price_paise": course.price_paise,
        "currency": course.currency,
        "capacity": course.capacity,
        "is_active": course.is_active,
        "is_published": course.is_published,
    }
