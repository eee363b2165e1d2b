"""The saga's spans and metrics."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from opentelemetry import trace

from observability.metrics import counter
from services.enrollments.models import EnrollmentSagaRecord

SAGA_STEPS = counter(
    "cerebrum_saga_steps_total",
    "Enrolment saga steps and compensations by outcome (ok, refused, unavailable, failed).",
    ("service", "step", "outcome"),
)
ENROLLMENTS = counter(
    "cerebrum_enrollments_total",
    "Enrolments by outcome (created, confirmed, compensated, cancelled, payment_after_cancel).",
    ("service", "outcome"),
)
SERVICE = "enrollments"
tracer = trace.get_tracer("cerebrum.enrollments.saga")
T = TypeVar("T")


def count_step(step: str, outcome: str) -> None:
    SAGA_STEPS.labels(SERVICE, step, outcome).inc()


def count_enrollment(outcome: str) -> None:
    ENROLLMENTS.labels(SERVICE, outcome).inc()


def saga_attributes(saga: EnrollmentSagaRecord) -> dict[str, Any]:
    return {
        "cerebrum.saga.id": str(saga.id),
        "cerebrum.saga.state": saga.state,
        "cerebrum.enrollment.id": str(saga.enrollment_id),
        "cerebrum.course.id": str(saga.course_id),
    }


async def spanned(name: str, saga: EnrollmentSagaRecord, call: Awaitable[T]) -> T:
    """Awaits a call started ahead of its step inside a span of its own, a sibling of the step's."""
    with tracer.start_as_current_span(name, attributes=saga_attributes(saga)):
        return await call
