"""Logs for people and machines: one line per event, carrying service, trace_id, span_id and request_id.

JSON lines when standard output is a file, a pipe or a collector (or with ``LOG_FORMAT=json``);
short coloured lines (structlog's ``ConsoleRenderer``) when it is a terminal, for whoever reads
them there (``LOG_FORMAT=console`` asks for them anywhere).

The access line (one per request) is the hottest log call of the platform, so it has a fast path,
:func:`write_access_line`, which builds the very line the processor chain would (same fields,
same redaction) without walking structlog's generic machinery. It is only taken while structlog
is configured as :func:`configure_logging` left it for JSON; anything else (console lines, a test
capturing logs, a reconfiguration) goes through structlog as usual.
"""

from __future__ import annotations

import contextvars
import io
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

import orjson
import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanContext

from observability.redaction import redact_processor

_state: dict[str, Any] = {"service": "cerebrum", "access": None, "format": "json"}
LOG_FORMATS = ("json", "console")

# Set while the embedded platform serves a call one of its own services makes in-process (the
# gateway's upstream call, a saga's step): the request that made it writes the one access line.
_INNER_HOP: contextvars.ContextVar[bool] = contextvars.ContextVar("cerebrum_inner_hop", default=False)


def enter_inner_hop() -> contextvars.Token[bool]:
    """Marks the current context as an in-process call inside a request that logs its own access line."""
    return _INNER_HOP.set(True)


def leave_inner_hop(token: contextvars.Token[bool]) -> None:
    _INNER_HOP.reset(token)


# structlog keeps one ContextVar per bound key in this dict; reading them directly is what
# ``merge_contextvars`` does, minus a walk over every context variable of the task.
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_PREFIX_LEN = len("structlog_")


def _merge_contextvars(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog's ``merge_contextvars``: the request-scoped values bound with bind_contextvars."""
    for name, var in list(_STRUCTLOG_VARS.items()):  # type: ignore[union-attr]
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(name[_PREFIX_LEN:], value)
    return event_dict


_merge = _merge_contextvars if _STRUCTLOG_VARS is not None else structlog.contextvars.merge_contextvars


def clear_request_context() -> None:
    """structlog's ``clear_contextvars``: unbinds what an earlier request left in this task's context."""
    if _STRUCTLOG_VARS is None:
        structlog.contextvars.clear_contextvars()
        return
    for var in list(_STRUCTLOG_VARS.values()):
        if var.get(Ellipsis) is not Ellipsis:
            var.set(Ellipsis)


class _UtcStamper:
    """``TimeStamper(fmt="iso", utc=True)``: ``2026-01-31T09:15:02.123456Z``, the date formatted once a second."""

    def __init__(self, key: str = "timestamp") -> None:
        self.key = key
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> str:
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        cached = self._second  # one tuple, so that another thread never sees half an update
        if cached[0] != second:
            cached = (second, datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat())
            self._second = cached
        # isoformat() leaves the fraction out when it is zero; so does this.
        return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict[self.key] = self.now()
        return event_dict


_stamper = _UtcStamper()


def _add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def _add_service(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("service", _state["service"])
    return event_dict


def _dumps(obj: Any, **_kw: Any) -> bytes:
    return orjson.dumps(obj, default=str)


class _AccessWriter:
    """Writes access lines straight to the stream structlog writes to, as its chain would render them."""

    def __init__(self, *, file: BinaryIO, processors: list[Any], factory: Any, wrapper: Any, enabled: bool) -> None:
        self.file = file
        self.processors = processors
        self.factory = factory
        self.wrapper = wrapper
        self.enabled = enabled
        self.lock = threading.Lock()

    def current(self) -> bool:
        # structlog.testing.capture_logs swaps the processors inside the same list, hence the copy.
        config = structlog.get_config()
        return (
            config["logger_factory"] is self.factory
            and config["wrapper_class"] is self.wrapper
            and config["processors"] == self.processors
        )

    def write(self, fields: dict[str, Any], span_context: SpanContext | None) -> None:
        # The order of the chain in configure_logging, step by step.
        event_dict: dict[str, Any] = _merge(None, "info", fields)  # type: ignore[assignment]
        event_dict["level"] = "info"
        event_dict["timestamp"] = _stamper.now()
        event_dict.setdefault("service", _state["service"])
        if span_context is None:
            span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event_dict["trace_id"] = format(span_context.trace_id, "032x")
            event_dict["span_id"] = format(span_context.span_id, "016x")
        redact_processor(None, "info", event_dict)
        line = orjson.dumps(event_dict, default=str) + b"\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()


def write_access_line(fields: dict[str, Any], span_context: SpanContext | None = None) -> bool:
    """Logs ``fields`` (with ``event``) at info level through the fast path; False if it is not available.

    ``span_context`` is the current span's context when the caller has it at hand.
    """
    if _INNER_HOP.get():
        return True
    writer: _AccessWriter | None = _state["access"]
    if writer is None or not writer.current():
        return False
    if writer.enabled:
        writer.write(fields, span_context)
    return True


def log_format() -> str:
    """``json`` or ``console``: what configure_logging chose for this process."""
    return str(_state["format"])


def choose_format(requested: str | None, stream: Any) -> str:
    """The requested format (or LOG_FORMAT); otherwise console on a terminal and JSON anywhere else."""
    chosen = (requested or os.environ.get("LOG_FORMAT") or "auto").lower()
    if chosen in LOG_FORMATS:
        return chosen
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def _short_console_line(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Keeps a terminal line short: the access line as one phrase; span and request ids stay in JSON logs."""
    if event_dict.get("event") == "request" and "status" in event_dict:
        method, path = event_dict.pop("method", ""), event_dict.pop("path", "")
        status, ms = event_dict.pop("status"), event_dict.pop("duration_ms", "")
        event_dict["event"] = f"{method} {path} → {status} in {ms} ms"
        event_dict.pop("route", None)
        event_dict.pop("client", None)
    event_dict.pop("span_id", None)
    event_dict.pop("request_id", None)
    if event_dict.get("service") == _state["service"]:
        del event_dict["service"]  # the process's own name on every line says nothing
    return event_dict


def configure_logging(
    *, service: str, level: str = "INFO", stream: TextIO | io.TextIOBase | None = None, fmt: str | None = None
) -> None:
    """Routes structlog and the standard library's logging to stdout, as JSON lines or console lines."""
    _state["service"] = service
    log_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    out = stream if stream is not None else sys.stdout
    console = choose_format(fmt, out) == "console"
    _state["format"] = "console" if console else "json"
    stamper: Any = structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False) if console else _stamper
    shared: list[Any] = [
        _merge,
        structlog.processors.add_log_level,
        stamper,
        _add_service,
        _add_trace_ids,
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    wrapper = structlog.make_filtering_bound_logger(log_level)
    factory: Any
    if console:
        isatty = getattr(out, "isatty", None)
        renderer: Any = structlog.dev.ConsoleRenderer(
            colors=callable(isatty) and bool(isatty()), sort_keys=False, pad_event_to=0, pad_level=False
        )
        shared.append(_short_console_line)
        processors = [*shared, renderer]
        factory = structlog.PrintLoggerFactory(file=out)  # type: ignore[arg-type]
        # Terminal lines go through the chain: a person reads them, the fast path is for machines.
        _state["access"] = None
        foreign_renderer: Any = renderer
    else:
        file = getattr(out, "buffer", sys.stdout.buffer)
        processors = [*shared, structlog.processors.JSONRenderer(serializer=_dumps)]
        factory = structlog.BytesLoggerFactory(file=file)
        # The fast path writes with its own lock, but to the same stream and one whole line per write.
        _state["access"] = _AccessWriter(
            file=file, processors=list(processors), factory=factory, wrapper=wrapper, enabled=log_level <= logging.INFO
        )
        foreign_renderer = structlog.processors.JSONRenderer(
            serializer=lambda o, **_: orjson.dumps(o, default=str).decode()
        )
    structlog.configure(
        processors=processors, wrapper_class=wrapper, logger_factory=factory, cache_logger_on_first_use=True
    )
    # Libraries log through the standard library; render their lines the same way.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, foreign_renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for quiet in ("alembic", "pika"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> Any:
    """Returns a structlog logger; bind request-scoped values through structlog.contextvars."""
    return structlog.get_logger(name)
