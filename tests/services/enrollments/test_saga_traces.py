"""A compensation after a failed payment stays in the trace of the payment that failed."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.services.enrollments.conftest import EnrollmentsApi

pytestmark = pytest.mark.integration
tracer = trace.get_tracer("tests.payments")


async def test_saga_resume_after_a_failed_payment_is_a_child_of_the_event_s_processing(
    api: EnrollmentsApi, spans: InMemorySpanExporter
) -> None:
    course_id = api.fakes.add_course(capacity=1)
    _, headers = api.student()
    started = await api.enrolled(headers, course_id)
    failed = api.fakes.payment_failed(started["order"]["order_id"], "card_declined")
    # The payments request that declined the card, as the event's headers carry it.
    with tracer.start_as_current_span("POST /payments/verify") as payment:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    spans.clear()

    await api.deliver(dataclasses.replace(failed, headers=carrier))

    finished = spans.get_finished_spans()
    (process,) = [s for s in finished if s.name == "payment.failed process"]
    (resume,) = [s for s in finished if s.name == "saga.resume"]
    assert resume.context is not None and process.context is not None
    assert resume.context.trace_id == payment.get_span_context().trace_id
    assert resume.parent is not None and resume.parent.span_id == process.context.span_id
    # The seat given back at courses is part of it too.
    (release,) = [s for s in finished if s.name == "saga.release_seat"]
    assert release.parent is not None and release.parent.span_id == resume.context.span_id
