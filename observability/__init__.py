"""Instrumentation every Cerebrum process sets up once at start: traces, metrics and logs."""

from observability.logging import configure_logging, get_logger
from observability.metrics import METRICS, render_metrics
from observability.middleware import ObservabilityMiddleware
from observability.tracing import configure_tracing, current_trace_ids, instrument_libraries

__all__ = [
    "METRICS",
    "ObservabilityMiddleware",
    "configure_logging",
    "configure_tracing",
    "current_trace_ids",
    "get_logger",
    "instrument_libraries",
    "render_metrics",
]
