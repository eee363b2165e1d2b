"""Structured JSON logs: one line per event, carrying service, trace_id, span_id and request_id."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace

from observability.redaction import redact_processor

_state: dict[str, Any] = {"service": "cerebrum"}


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


def configure_logging(*, service: str, level: str = "INFO", stream: TextIO | io.TextIOBase | None = None) -> None:
    """Routes structlog and the standard library's logging to JSON lines on stdout."""
    _state["service"] = service
    log_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
        _add_trace_ids,
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    out = stream if stream is not None else sys.stdout
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(serializer=_dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.BytesLoggerFactory(file=getattr(out, "buffer", sys.stdout.buffer)),
        cache_logger_on_first_use=True,
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
