"""Fault injection for chaos experiments: latency and errors on chosen routes, off unless enabled.

A service built with ``CHAOS_ENABLED=true`` carries one pure-ASGI middleware and an admin router
(``GET/PUT/DELETE /chaos/faults``, guarded by ``X-Chaos-Token``). The middleware sits inside the
observability middleware, so an injected error is counted in ``http_requests_total`` under the
route it hit and shows on the request's span as a ``chaos.fault`` event: an experiment's fault
looks to dashboards, alerts and the SLO gate exactly like a real one. Disabled, nothing is added.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Header
from opentelemetry import trace
from pydantic import BaseModel, Field, field_validator
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match

from observability.metrics import counter
from observability.problems import problem_type
from services.kit.errors import Unauthorized
from services.kit.schemas import StrictInput

try:  # FastAPI >= 0.16x: included routers stay one entry of app.routes
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists every route itself
    iter_route_contexts = None  # type: ignore[assignment]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Kind = Literal["latency", "error"]

ADMIN_PATH = "/chaos/faults"
# Never faulted: the admin API itself (a fault must always be removable) and the metrics scrape.
EXEMPT_PREFIXES = ("/chaos/", "/metrics")
FAULTS_INJECTED = counter(
    "cerebrum_chaos_faults_injected_total",
    "Faults injected by a chaos experiment, by kind and by the route (or prefix) they were set on.",
    ("service", "kind", "route"),
)
log = structlog.get_logger("cerebrum.chaos")
TokenHeader = Annotated[str | None, Header(alias="X-Chaos-Token")]


class FaultSpec(StrictInput):
    """One fault: delay or fail a share of the requests to some routes."""

    kind: Kind
    routes: list[str] = Field(
        default_factory=lambda: ["/"],
        min_length=1,
        description='Route templates ("/users/{user_id}") or path prefixes ("/auth"); "/" is every path.',
    )
    methods: list[str] | None = Field(default=None, description="HTTP methods; every method when unset.")
    percent: float = Field(default=100.0, ge=0, le=100, description="Share of matching requests affected.")
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    status: int = Field(default=503, ge=400, le=599)
    expires_after_seconds: float | None = Field(
        default=None, gt=0, description="Removes itself after this long (a crashed experiment leaves nothing)."
    )

    @field_validator("routes")
    @classmethod
    def _absolute(cls, routes: list[str]) -> list[str]:
        for route in routes:
            if not route.startswith("/"):
                raise ValueError(f"a route starts with '/': {route!r}")
        return routes

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str] | None) -> list[str] | None:
        return [m.upper() for m in methods] if methods else None


class FaultSet(StrictInput):
    faults: list[FaultSpec] = Field(default_factory=list, max_length=50)


class FaultOut(FaultSpec):
    id: str
    expires_in_seconds: float | None = None


class FaultList(BaseModel):
    service: str
    faults: list[FaultOut]


def _pattern(route: str) -> re.Pattern[str]:
    """A template matches whole paths (``{x}`` one segment, ``{x:path}`` the rest); anything else is a prefix."""
    if "{" not in route:
        base = re.escape(route.rstrip("/"))
        return re.compile(f"^{base}(?:/.*)?$" if base else "^/.*$")
    parts, pos = [], 0
    for match in re.finditer(r"\{([^}:]+)(?::([^}]+))?\}", route):
        parts.append(re.escape(route[pos : match.start()]))
        parts.append(".+" if match.group(2) == "path" else "[^/]+")
        pos = match.end()
    parts.append(re.escape(route[pos:]))
    return re.compile("^" + "".join(parts) + "$")


@dataclass(frozen=True)
class Fault:
    id: str
    spec: FaultSpec
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    expires_at: float | None

    @classmethod
    def of(cls, spec: FaultSpec, *, now: float) -> Fault:
        expires = now + spec.expires_after_seconds if spec.expires_after_seconds else None
        patterns = tuple((route, _pattern(route)) for route in spec.routes)
        return cls(id=uuid.uuid4().hex[:12], spec=spec, patterns=patterns, expires_at=expires)

    def matched_route(self, method: str, path: str) -> str | None:
        """The route (or prefix) of this fault the request falls under, if any."""
        if self.spec.methods is not None and method not in self.spec.methods:
            return None
        for route, pattern in self.patterns:
            if pattern.match(path):
                return route
        return None

    def out(self, now: float) -> FaultOut:
        remaining = None if self.expires_at is None else round(max(0.0, self.expires_at - now), 3)
        return FaultOut(id=self.id, expires_in_seconds=remaining, **self.spec.model_dump())


@dataclass
class FaultBoard:
    """The faults one service injects now; replaced whole, read by every request without a lock."""

    service: str
    token: str | None
    faults: tuple[Fault, ...] = ()
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic

    def replace(self, specs: Sequence[FaultSpec]) -> list[Fault]:
        now = self.clock()
        self.faults = tuple(Fault.of(spec, now=now) for spec in specs)
        log.warning("chaos_faults_set", service=self.service, faults=[f.spec.model_dump() for f in self.faults])
        return list(self.faults)

    def clear(self) -> None:
        if self.faults:
            log.warning("chaos_faults_cleared", service=self.service)
        self.faults = ()

    def active(self) -> tuple[Fault, ...]:
        faults = self.faults
        if faults and any(f.expires_at is not None for f in faults):
            now = self.clock()
            live = tuple(f for f in faults if f.expires_at is None or f.expires_at > now)
            if len(live) != len(faults):
                self.faults = faults = live
        return faults

    def listing(self) -> FaultList:
        now = self.clock()
        return FaultList(service=self.service, faults=[f.out(now) for f in self.active()])

    def roll(self, percent: float) -> bool:
        return percent >= 100 or self.rng.random() * 100 < percent

    def authorise(self, presented: str | None) -> None:
        if self.token is None:
            raise Unauthorized("The chaos admin API needs CHAOS_TOKEN to be set on this service")
        if presented is None or not hmac.compare_digest(presented.encode(), self.token.encode()):
            raise Unauthorized("A valid X-Chaos-Token header is required")


class FaultMiddleware:
    """Delays or fails the requests the board's faults match; passes everything else untouched."""

    def __init__(self, app: ASGIApp, *, board: FaultBoard, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.board = board
        self.routes = routes
        self._flat: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.board.active() if scope["type"] == "http" else ()
        if not faults or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        for fault in faults:
            route = fault.matched_route(method, path)
            if route is None or not self.board.roll(fault.spec.percent):
                continue
            if fault.spec.kind == "latency":
                delay = fault.spec.latency_ms + self.board.rng.uniform(0, fault.spec.jitter_ms)
                self._record(fault, route, path, delay_ms=round(delay, 1))
                await asyncio.sleep(delay / 1000)
                continue
            self._record(fault, route, path, status=fault.spec.status)
            await self._fail(scope, send, fault, route)
            return
        await self.app(scope, receive, send)

    def _record(self, fault: Fault, route: str, path: str, **details: float | int) -> None:
        FAULTS_INJECTED.labels(self.board.service, fault.spec.kind, route).inc()
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "chaos.fault",
                {
                    "chaos.fault.id": fault.id,
                    "chaos.fault.kind": fault.spec.kind,
                    "chaos.fault.route": route,
                    **details,
                },
            )

    async def _fail(self, scope: Scope, send: Send, fault: Fault, route: str) -> None:
        # The app's own route, when one matches, so the RED metrics and the span carry its template
        # as usual. Matched once the app's routes are final (the first fault), not per request.
        if self._flat is None:
            self._flat = flat_routes(self.routes)
        for candidate in self._flat:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                scope["route"] = candidate
                break
        status = fault.spec.status
        body = orjson.dumps(
            {
                "type": problem_type("chaos-fault"),
                "title": "Injected fault",
                "status": status,
                "detail": f"A chaos experiment failed this request on purpose ({route})",
                "instance": scope["path"],
                "fault_id": fault.id,
                "service": self.board.service,
            }
        )
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def flat_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every route one by one, each with its full template (``path_format``) and ``matches``.

    FastAPI (0.16x) keeps an included router as one entry of ``app.routes`` that matches but names
    no route; ``iter_route_contexts`` opens it up into the routes as the app serves them.
    """
    if iter_route_contexts is None:
        return list(routes)
    return list(iter_route_contexts(routes))


def fault_router(board: FaultBoard) -> APIRouter:
    """``GET``, ``PUT`` (replace) and ``DELETE`` ``/chaos/faults``."""
    router = APIRouter(include_in_schema=False)

    @router.get(ADMIN_PATH)
    async def list_faults(x_chaos_token: TokenHeader = None) -> FaultList:
        board.authorise(x_chaos_token)
        return board.listing()

    @router.put(ADMIN_PATH)
    async def set_faults(body: FaultSet, x_chaos_token: TokenHeader = None) -> FaultList:
        board.authorise(x_chaos_token)
        board.replace(body.faults)
        return board.listing()

    @router.delete(ADMIN_PATH)
    async def clear_faults(x_chaos_token: TokenHeader = None) -> FaultList:
        board.authorise(x_chaos_token)
        board.clear()
        return board.listing()

    return router


def _secret(value: object) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = str(getter() if callable(getter) else value)
    return text or None


def install_faults(
    app: FastAPI, settings: object, *, enabled: bool | None = None, token: str | None = None
) -> FaultBoard | None:
    """Adds the fault middleware and admin router when chaos is enabled; returns the board (or None).

    Reads ``chaos_enabled`` and ``chaos_token`` from the settings (``enabled``/``token`` override
    them). The middleware goes innermost, inside the observability middleware whatever the order
    of calls, so injected faults are measured like real ones. Calling it twice changes nothing.
    """
    existing: FaultBoard | None = getattr(app.state, "chaos_faults", None)
    if existing is not None:
        return existing
    if not (getattr(settings, "chaos_enabled", False) if enabled is None else enabled):
        return None
    if app.middleware_stack is not None:
        raise RuntimeError("install_faults must be called before the app serves its first request")
    service = str(getattr(settings, "service_name", "cerebrum"))
    board = FaultBoard(service=service, token=token or _secret(getattr(settings, "chaos_token", None)))
    app.include_router(fault_router(board))
    app.user_middleware.append(Middleware(FaultMiddleware, board=board, routes=app.router.routes))
    app.state.chaos_faults = board
    log.warning("chaos_faults_enabled", service=service, admin=ADMIN_PATH, token_set=board.token is not None)
    return board
