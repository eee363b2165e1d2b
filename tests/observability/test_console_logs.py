"""Logs for people: short coloured lines on a terminal, JSON lines anywhere else or when asked."""

from __future__ import annotations

import io

import pytest
import structlog

from observability.logging import (
    choose_format,
    configure_logging,
    enter_inner_hop,
    leave_inner_hop,
    log_format,
    write_access_line,
)
from tests.conftest import _LOGS, LogCapture


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal() -> Terminal:
    """Logging configured for a terminal for one test, then back to the tests' JSON capture."""
    out = Terminal()
    configure_logging(service="gateway", stream=out)
    yield out
    configure_logging(service="tests", level="INFO", stream=_LOGS)


ACCESS = {
    "method": "GET",
    "route": "/api/{path:path}",
    "path": "/api/courses",
    "status": 200,
    "duration_ms": 3.25,
    "client": "127.0.0.1",
}


def test_a_terminal_gets_one_short_coloured_line_per_request(terminal: Terminal) -> None:
    assert log_format() == "console"
    tokens = structlog.contextvars.bind_contextvars(request_id="f" * 32, service="gateway")
    try:
        # On a terminal the fast path steps aside: the chain renders the line for a person.
        assert not write_access_line({**ACCESS, "event": "request"})
        structlog.get_logger("cerebrum.access").info("request", **ACCESS)
        structlog.get_logger("cerebrum.users").info("login_failed", password="hunter2-x")
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    access, refused = terminal.getvalue().splitlines()
    assert "GET /api/courses → 200 in 3.25 ms" in access and "\x1b[" in access, "one phrase, in colour"
    assert "{" not in access and "route=" not in access and "f" * 32 not in access
    assert len(access) < 160
    assert "login_failed" in refused and "hunter2" not in refused, "redaction holds on a terminal too"


def test_log_format_json_is_honoured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert choose_format(None, Terminal()) == "json"
    monkeypatch.delenv("LOG_FORMAT")
    assert choose_format(None, Terminal()) == "console"
    assert choose_format(None, LogCapture()) == "json", "a pipe or a file gets JSON lines"
    assert choose_format("console", LogCapture()) == "console"
    assert choose_format("auto", Terminal()) == "console"


def test_an_in_process_hop_writes_no_access_line_of_its_own(logs: LogCapture) -> None:
    token = enter_inner_hop()
    try:
        assert write_access_line({**ACCESS, "event": "request"}), "handled: the outer request logs it"
    finally:
        leave_inner_hop(token)
    assert write_access_line({**ACCESS, "event": "request"})
    assert [line["path"] for line in logs.lines() if line.get("event") == "request"] == ["/api/courses"]
