"""The saga's spans and metrics."""

from __future__ import annotations

from opentelemetry import trace

from observability.metrics import counter

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


def count_step(step: str, outcome: str) -> None:
    SAGA_STEPS.labels(SERVICE, step, outcome).inc()


def count_enrollment(outcome: str) -> None:
    ENROLLMENTS.labels(SERVICE, outcome).inc()
