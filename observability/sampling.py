"""Library instrumentation that costs nothing for a request the sampler has already dropped.

With parent-based sampling (the SDK's default, and ``parentbased_traceidratio``), a child of an
unsampled span is always dropped: the contrib instrumentations still format the Redis command,
parse the database URL, start a non-recording span and swap the context for it, for nothing that
is ever recorded or exported. The gates here call the uninstrumented library directly in that
case and leave everything else to the contrib instrumentation: a recorded span is exactly what
it was, and a request with no span at all (a background job) still gets its root decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import wrapt
from opentelemetry import metrics, trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

_drops = {"local": False, "remote": False}


def watch_sampler() -> None:
    """Notes whether the process's sampler drops every child of an unsampled parent (local, remote)."""
    sampler = getattr(trace.get_tracer_provider(), "sampler", None)
    sampler = getattr(sampler, "delegate", sampler)  # tracing.QuietPolls decides on the root spans only
    parent_based = isinstance(sampler, ParentBased)
    _drops["local"] = parent_based and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
    _drops["remote"] = parent_based and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF


def child_dropped() -> bool:
    """True when a span started now would certainly be dropped: its parent is unsampled."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or ctx.trace_flags.sampled:
        return False
    return _drops["remote"] if ctx.is_remote else _drops["local"]


def _gate(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # ``wrapped`` is the contrib instrumentation's wrapper; ``__wrapped__`` what it wraps.
    if child_dropped():
        return wrapped.__wrapped__(*args, **kwargs)
    return wrapped(*args, **kwargs)


def gate_wrapper(owner: Any, name: str) -> bool:
    """Puts the gate in front of an instrumentation's (wrapt) wrapper of ``owner.name``, once."""
    current = vars(owner).get(name)
    if not isinstance(current, wrapt.FunctionWrapper) or getattr(current, "_self_wrapper", None) is _gate:
        return False
    wrapt.wrap_function_wrapper(owner, name, _gate)
    return True


def gate_redis() -> None:
    """Redis commands and pipelines, sync and asyncio (what RedisInstrumentor wraps)."""
    import redis
    import redis.asyncio
    import redis.asyncio.client
    import redis.client

    for owner, name in (
        (redis.Redis, "execute_command"),
        (redis.client.Pipeline, "execute"),
        (redis.client.Pipeline, "immediate_execute_command"),
        (redis.asyncio.Redis, "execute_command"),
        (redis.asyncio.client.Pipeline, "execute"),
        (redis.asyncio.client.Pipeline, "immediate_execute_command"),
    ):
        gate_wrapper(owner, name)


def gate_sqlalchemy() -> None:
    """SQL statements: the instrumentation's ``before_cursor_execute`` listener, for engines made after this."""
    try:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    except ImportError:
        return
    before: Callable[..., Any] | None = getattr(EngineTracer, "_before_cur_exec", None)
    if before is None or getattr(before, "_cerebrum_gated", False):
        return

    def _before_cur_exec(
        self: Any, conn: Any, cursor: Any, statement: Any, params: Any, context: Any, executemany: Any
    ) -> Any:
        if child_dropped():
            # No span on the execution context: the after/error listeners then have nothing to end.
            return statement, params
        return before(self, conn, cursor, statement, params, context, executemany)

    _before_cur_exec._cerebrum_gated = True  # type: ignore[attr-defined]
    EngineTracer._before_cur_exec = _before_cur_exec  # type: ignore[method-assign]


def _metrics_recorded() -> bool:
    """Whether a real meter provider is set: then an instrumentation's metrics must still be fed."""
    provider = metrics.get_meter_provider()
    return not isinstance(provider, metrics.NoOpMeterProvider) and type(provider).__name__ != "_ProxyMeterProvider"


def gate_aiohttp() -> None:
    """aiohttp client calls: the instrumentation's ``on_request_start``, for sessions made after this.

    With the span dropped and no meter provider, the call only needs what the instrumentation
    does besides: trace context in the outgoing headers (so that the next service continues the
    same, unsampled, trace). Its end and exception handlers then find no span and do nothing.
    """
    import opentelemetry.instrumentation.aiohttp_client as contrib

    original = contrib.create_trace_config
    if getattr(original, "_cerebrum_gated", False):
        return

    def gated(handler: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[None]]:
        async def on_request_start(session: Any, trace_config_ctx: Any, params: Any) -> None:
            if child_dropped() and not _metrics_recorded():
                inject(params.headers)
                return
            await handler(session, trace_config_ctx, params)

        return on_request_start

    def create_trace_config(*args: Any, **kwargs: Any) -> Any:
        config = original(*args, **kwargs)
        handlers = list(config.on_request_start)
        config.on_request_start.clear()
        config.on_request_start.extend(gated(handler) for handler in handlers)
        return config

    create_trace_config._cerebrum_gated = True  # type: ignore[attr-defined]
    contrib.create_trace_config = create_trace_config
