"""One pure-ASGI middleware for the server span, the RED metrics, the request id and the access log.

Kept to a single layer on purpose: stacking ``BaseHTTPMiddleware`` layers and the contrib FastAPI
instrumentor costs a five-fold throughput loss on an empty route; doing the three jobs here in one
pass keeps the observability tax small (``make bench`` measures it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from random import getrandbits
from time import perf_counter
from typing import Any

import orjson
import structlog
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.logging import clear_request_context, write_access_line
from observability.metrics import METRICS, RedMetrics
from observability.problems import problem_type
from observability.tracing import current_service

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED_ROUTE = "unmatched"
_PROPAGATION_HEADERS = (b"traceparent", b"tracestate", b"baggage")
_NO_ADDRESS = ("", None)


_INTERNAL_ERROR_HEADERS = [(b"content-type", b"application/problem+json")]


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = orjson.dumps(
        {
            "type": problem_type("internal-error"),
            "title": "Internal error",
            "status": 500,
            "detail": "The request failed unexpectedly; it has been logged with its request id",
            "request_id": request_id,
        }
    )
    headers = [*_INTERNAL_ERROR_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _HeaderGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def route_template(scope: Scope) -> str:
    """Returns the matched route's template (``/users/{user_id}``), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    return UNMATCHED_ROUTE


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random request id, formatted as ``uuid.uuid4().hex`` is, without its system call.

    Request ids only need to be unique, not unguessable (nothing is authorised by one).
    """
    return f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


class ObservabilityMiddleware:
    """Wraps a service's ASGI app: span, metrics, request id and access log for each request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        metrics: RedMetrics = METRICS,
        tracer: trace.Tracer | None = None,
        access_log: bool = True,
        skip_paths: frozenset[str] = frozenset({"/metrics", "/health", "/ready"}),
    ) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.tracer = tracer or trace.get_tracer("cerebrum.http")
        self.access_log = access_log
        self.skip_paths = skip_paths
        self.log = structlog.get_logger("cerebrum.access")
        self._in_flight = metrics.in_flight.labels(service)
        self._span_names: dict[tuple[str, str], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        carrier: dict[str, str] | None = None
        request_id: str | None = None
        user_agent: str | None = None
        shadow = False
        for name, value in scope["headers"]:
            if name in _PROPAGATION_HEADERS:
                if carrier is None:
                    carrier = {}
                carrier[name.decode()] = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-cerebrum-shadow":
                shadow = value == b"1"
        if not request_id:
            request_id = new_request_id()
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id

        parent = propagate.extract(carrier, getter=_GETTER) if carrier else None
        service = self.service
        service_token = current_service.set(service)
        server = scope.get("server") or _NO_ADDRESS
        client = scope.get("client") or _NO_ADDRESS
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "cerebrum.request_id": request_id,
        }
        if server[0]:
            attributes["server.address"] = server[0]
            if server[1]:
                attributes["server.port"] = server[1]
        if client[0]:
            attributes["client.address"] = client[0]
        if user_agent:
            attributes["user_agent.original"] = user_agent
        if shadow:
            attributes["cerebrum.shadow"] = 1
        span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        ctx_token = context.attach(trace.set_span_in_context(span, parent))
        # A keep-alive connection serves its requests in one task: start each from a clean slate.
        clear_request_context()
        log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id, service=service)
        status = 500
        started = False
        span_context = span.get_span_context()
        sampled = span_context.trace_flags.sampled
        trace_id = format(span_context.trace_id, "032x") if sampled else None
        extra_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        if sampled:
            # W3C Trace Context level 2: tells the caller which trace served them.
            extra_headers.append((b"traceresponse", f"00-{trace_id}-{span_context.span_id:016x}-01".encode()))

        async def send_with_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        self._in_flight.inc()
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except Exception as exc:
            # The request ends here, logged with its trace: a problem+json 500 if nothing was sent
            # yet (Starlette's error middleware re-raises after its own response, so once started
            # there is nothing left to send).
            error = exc
            if not started:
                await _send_internal_error(send_with_status, request_id)
        finally:
            self._in_flight.dec()
            elapsed = perf_counter() - start
            route = route_template(scope)
            # A span the sampler dropped records nothing: no attribute, name or status work for it.
            recording = span.is_recording()
            if recording:
                if route != UNMATCHED_ROUTE:
                    span.update_name(self._span_name(method, route))
                    span.set_attributes({"http.route": route, "http.response.status_code": status})
                else:
                    span.set_attribute("http.response.status_code", status)
            if error is not None:
                self.log.error("unhandled_error", method=method, path=path, exc_info=error)
            if error is not None and recording:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            elif status >= 500 and recording:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            self.metrics.observe(service, route, method, status, elapsed, trace_id, shadow)
            if self.access_log and path not in self.skip_paths:
                line = {
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": client[0],
                    "event": "request",
                }
                if shadow:
                    line["shadow"] = True
                if not write_access_line(line, span_context):
                    del line["event"]
                    self.log.info("request", **line)
            span.end()
            structlog.contextvars.reset_contextvars(**log_tokens)
            context.detach(ctx_token)
            current_service.reset(service_token)

    def _span_name(self, method: str, route: str) -> str:
        name = self._span_names.get((method, route))
        if name is None:
            name = f"{method} {route}"
            if len(self._span_names) < 1024:  # the method is the client's word: bounded
                self._span_names[(method, route)] = name
        return name
