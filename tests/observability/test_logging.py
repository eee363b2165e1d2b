"""The access line's fast path writes what the structlog chain writes, redaction included."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import structlog
from opentelemetry import trace

from observability.logging import _stamper, write_access_line
from tests.conftest import LogCapture

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def _fields() -> dict[str, object]:
    return {
        "method": "GET",
        "route": "/users/by-email/{email}",
        "path": f"/users/by-email/asha.rao@example.com?token={JWT}",
        "status": 200,
        "duration_ms": 1.25,
        "client": "203.0.113.7",
    }


def test_the_fast_line_is_the_chains_line(logs: LogCapture) -> None:
    tokens = structlog.contextvars.bind_contextvars(
        request_id="r-1", service="users", user_id="8b1f6c1e-0000-4000-8000-000000000001", password="hunter2-x"
    )
    try:
        with trace.get_tracer("test").start_as_current_span("GET /users/by-email/{email}") as span:
            assert write_access_line({**_fields(), "event": "request"}, span.get_span_context())
            structlog.get_logger("cerebrum.access").info("request", **_fields())
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    fast, chain = logs.lines()[-2:]
    assert fast.pop("timestamp") and chain.pop("timestamp")
    assert fast == chain
    assert fast["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert fast["password"] == "[REDACTED]" and "asha.rao@example.com" not in fast["path"] and JWT not in fast["path"]
    assert "a***@example.com" in fast["path"] and fast["user_id"].startswith("8b1f6c1e")


def test_outside_a_span_the_line_has_no_trace_ids(logs: LogCapture) -> None:
    assert write_access_line({**_fields(), "event": "request"})
    structlog.get_logger("cerebrum.access").info("request", **_fields())
    fast, chain = logs.lines()[-2:]
    assert "trace_id" not in fast and fast.pop("timestamp") and chain.pop("timestamp") and fast == chain


def test_a_reconfigured_structlog_is_honoured() -> None:
    with structlog.testing.capture_logs() as captured:
        assert not write_access_line({**_fields(), "event": "request"})
    assert captured == []


def test_the_timestamp_is_iso_utc_as_structlog_writes_it() -> None:
    stamp = _stamper.now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5
    reference = structlog.processors.TimeStamper(fmt="iso", utc=True, key="t")(None, "info", {})["t"]
    assert len(reference) == len(stamp) and reference[:16] <= stamp[:16]


def test_above_info_the_access_line_is_filtered_as_structlog_filters_it() -> None:
    from observability.logging import configure_logging
    from tests.conftest import _LOGS

    quiet = LogCapture()
    configure_logging(service="tests", level="WARNING", stream=quiet)
    try:
        assert write_access_line({**_fields(), "event": "request"})
        structlog.get_logger("cerebrum.access").warning("kept")
        assert [line["event"] for line in quiet.lines()] == ["kept"]
    finally:
        configure_logging(service="tests", level="INFO", stream=_LOGS)
