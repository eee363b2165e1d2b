"""Structured JSON logs: one line per event, carrying service, trace_id, span_id and request_id.

The access line (one per request) is the hottest log call of the platform, so it has a fast path,
:func:`write_access_line`, which builds the very line the processor chain would (same fields,
same redaction) without walking structlog's generic machinery. It is only taken while structlog
is configured as :func:`configure_logging` left it; anything else (a test capturing logs, a
reconfiguration) goes through structlog as usual.
"""

from __future__ import annotations

import contextvars
import io
import logging
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

_state: dict[str, Any] = {"service": "cerebrum", "access": None}

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
    writer: _AccessWriter | None = _state["access"]
    if writer is None or not writer.current():
        return False
    if writer.enabled:
        writer.write(fields, span_context)
    return True


def configure_logging(*, service: str, level: str = "INFO", stream: TextIO | io.TextIOBase | None = None) -> None:
    """Routes structlog and the standard library's logging to JSON lines on stdout."""
    _state["service"] = service
    log_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Any] = [
        _merge,
        structlog.processors.add_log_level,
        _stamper,
        _add_service,
        _add_trace_ids,
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    out = stream if stream is not None else sys.stdout
    file = getattr(out, "buffer", sys.stdout.buffer)
    processors = [*shared, structlog.processors.JSONRenderer(serializer=_dumps)]
    factory = structlog.BytesLoggerFactory(file=file)
    wrapper = structlog.make_filtering_bound_logger(log_level)
    structlog.configure(
        processors=processors, wrapper_class=wrapper, logger_factory=factory, cache_logger_on_first_use=True
    )
    # The fast path writes with its own lock, but to the same stream and one whole line per write.
    _state["access"] = _AccessWriter(
        file=file, processors=list(processors), factory=factory, wrapper=wrapper, enabled=log_level <= logging.INFO
    )
    # Libraries log through the standard library; render their lines the same way.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()),
            ],
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
