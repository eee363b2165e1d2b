"""Tracing set-up: one TracerProvider per process, exporters chosen by the standard OTEL_* variables.

The OTLP exporter reads its endpoint, headers and protocol from ``OTEL_EXPORTER_OTLP_*`` itself;
the sampler comes from ``OTEL_TRACES_SAMPLER`` (the SDK default is parent-based always-on).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from observability import sampling

_configured_provider: TracerProvider | None = None

# The service serving the current request, stamped on every span started inside it: in embedded
# mode one process (one tracing resource) serves all seven services.
current_service: ContextVar[str | None] = ContextVar("cerebrum_service", default=None)


class ServiceStampProcessor(SpanProcessor):
    """Adds ``cerebrum.service`` to each span started while a service handles a request."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        service = current_service.get()
        if service is not None:
            span.set_attribute("cerebrum.service", service)


_instrumented: set[str] = set()

# Set while a background job looks for work (services.kit.jobs): see QuietPolls.
_background_poll: ContextVar[bool] = ContextVar("cerebrum_background_poll", default=False)
_DROP = SamplingResult(Decision.DROP)


@contextmanager
def background_poll() -> Iterator[None]:
    """Marks the code inside as a background job's poll: its queries start no trace of their own."""
    token = _background_poll.set(True)
    try:
        yield
    finally:
        _background_poll.reset(token)


class QuietPolls(Sampler):
    """Drops a client span (a query, a cache or HTTP call) that would start a trace during a poll.

    A job polls with queries every second or so, and each query outside a trace used to be a trace
    of its own (nine traces in ten, on an idle platform). The work a poll finds is traced all the
    same: the job's own spans (internal, producer, consumer kinds) may still start a trace, spans
    with a parent (a stored request context, a span of the job) follow it as usual, and everything
    outside a poll is left to the configured sampler.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and _background_poll.get()
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return _DROP
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"QuietPolls{{{self.delegate.get_description()}}}"


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to keep beside work that is done later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_of(carrier: Mapping[str, str] | None) -> Context:
    """The context kept by ``trace_carrier``; an empty one (a new trace) when nothing was kept."""
    return propagate.extract(dict(carrier)) if carrier else Context()


def _exporters_from_env(env: Mapping[str, str], default: str) -> list[SpanExporter]:
    names = env.get("OTEL_TRACES_EXPORTER")
    if not names:
        names = (
            "otlp"
            if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            else default
        )
    exporters: list[SpanExporter] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name == "otlp":
            # The stock OTLP/HTTP exporter (it reads OTEL_EXPORTER_OTLP_*) with a faster encoder.
            from observability.otlp import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name in ("none", ""):
            continue
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (use otlp, console or none)")
    return exporters


def configure_tracing(
    *,
    service_name: str,
    service_version: str,
    environment: str,
    default_exporter: str = "none",
    extra_processors: list[SpanProcessor] | None = None,
    env: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Sets the process's tracer provider once; later calls return the same provider."""
    global _configured_provider
    if _configured_provider is not None:
        for processor in extra_processors or []:
            _configured_provider.add_span_processor(processor)
        return _configured_provider
    env = os.environ if env is None else env
    resource = Resource.create(
        {
            "service.name": env.get("OTEL_SERVICE_NAME", service_name),
            "service.version": service_version,
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource)
    # Wrapped before any tracer exists: each tracer keeps the sampler it was made with.
    provider.sampler = QuietPolls(provider.sampler)
    provider.add_span_processor(ServiceStampProcessor())
    for exporter in _exporters_from_env(env, default_exporter):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in extra_processors or []:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured_provider = provider
    return provider


def instrument_libraries(*names: str) -> None:
    """Turns on the contrib instrumentations named (sqlalchemy, redis, pika, aiohttp), once each.

    Redis, SQLAlchemy and aiohttp are gated (observability.sampling): under a parent-based
    sampler they do no work inside a request whose span was not sampled.
    """
    sampling.watch_sampler()
    for name in names:
        if name in _instrumented:
            continue
        if name == "sqlalchemy":
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from sqlalchemy.engine.base import Engine

            SQLAlchemyInstrumentor().instrument(enable_commenter=False)
            sampling.gate_sqlalchemy()
            sampling.gate_wrapper(Engine, "connect")
        elif name == "redis":
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            RedisInstrumentor().instrument()
            sampling.gate_redis()
        elif name == "pika":
            from opentelemetry.instrumentation.pika import PikaInstrumentor

            PikaInstrumentor().instrument()
        elif name == "aiohttp":
            from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

            AioHttpClientInstrumentor().instrument()
            sampling.gate_aiohttp()
        else:
            raise ValueError(f"no instrumentation called {name!r}")
        _instrumented.add(name)


def current_trace_ids() -> tuple[str, str] | None:
    """Returns the current span's (trace_id, span_id) in hex, or None outside a recorded span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
