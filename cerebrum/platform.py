"""The embedded platform: every service in one process, dispatched by the path's first segment.

This is also the migration's "monolith" baseline: the same service code, one process, no network
hops between services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from observability import ObservabilityMiddleware, render_metrics
from observability.logging import enter_inner_hop, leave_inner_hop
from observability.middleware import ASGIApp, Receive, Scope, Send
from services.kit import errors
from services.kit.app import ServiceKit, new_fastapi, readiness_response
from services.kit.health import run_checks
from services.kit.http import IN_PROCESS_CLIENT
from services.kit.proxies import ForwardedClient

OnReady = Callable[["Platform"], Awaitable[None]]


class Platform:
    """An ASGI app that runs the services' lifespans together and routes each request to one.

    From outside, a service's own path (``/auth/login``) is held to the gateway's limits as ``/api``
    is; inside, the gateway's calls are believed about whose request it is (X-Forwarded-For).
    """

    def __init__(
        self,
        apps: dict[str, FastAPI],
        prefixes: dict[str, str],
        *,
        observability: bool = True,
        on_ready: OnReady | None = None,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.apps = apps
        self.on_ready = on_ready
        self.root = self._root_app(observability)
        self.routes: dict[str, ASGIApp] = {segment: apps[name] for segment, name in prefixes.items()}
        self.front = ForwardedClient(self._from_outside, trusted_proxies)
        # The gateway's in-process calls name the client it saw (and, behind a trusted proxy, the chain).
        dispatch: Any = self._dispatch
        self.inside: Any = ProxyHeadersMiddleware(dispatch, trusted_hosts=[IN_PROCESS_CLIENT[0], *trusted_proxies])

    def kit(self, name: str) -> ServiceKit:
        kit: ServiceKit = self.apps[name].state.kit
        return kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.front(scope, receive, send)

    async def _from_outside(self, scope: Scope, receive: Receive, send: Send) -> None:
        app, scope = self._route(scope)
        gateway_app = self.apps.get("gateway")
        if app is not None and app is not gateway_app and gateway_app is not None and scope["type"] == "http":
            try:
                await gateway_app.state.gateway.limit_direct(scope)
            except errors.DomainError as exc:
                refusal = errors.problem(
                    Request(scope),
                    status=exc.status,
                    type_=exc.type,
                    title=exc.title,
                    detail=exc.detail,
                    headers=exc.headers or None,
                    **exc.extensions,
                )
                await refusal(scope, receive, send)
                return
        await (app or self.root)(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        app, scope = self._route(scope)
        await (app or self.root)(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[ASGIApp | None, Scope]:
        path: str = scope.get("path", "/")
        end = path.find("/", 1)
        segment = path[1:end] if end > 0 else path[1:]
        app = self.routes.get(segment)
        if app is None and segment in ("openapi", "docs") and end > 0:
            # /openapi/<service>.json and /docs/<service>[/redoc, /assets/...] belong to the service they name.
            name = path[end + 1 :].split("/", 1)[0]
            app = self.apps.get(name.removesuffix(".json"))
        elif app is None and segment == "chaos" and path.endswith("/faults"):
            # /chaos/<service>/faults is that service's fault board (CHAOS_ENABLED); each service
            # keeps its own, as it does in distributed mode at /chaos/faults.
            name = path[end + 1 :].split("/", 1)[0]
            app = self.apps.get(name)
            if app is not None:
                scope = {**scope, "path": "/chaos/faults", "raw_path": b"/chaos/faults"}
        return app, scope

    async def in_process(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves a call one service makes to another inside this process (the gateway's, a saga's).

        It keeps its own span and metrics, but not an access line: the request that made it writes
        the one line a person reading the log expects per request.
        """
        token = enter_inner_hop()
        try:
            await self.inside(scope, receive, send)
        finally:
            leave_inner_hop(token)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Platform]:
        """Starts every service (migrations, relays, consumers) and stops them all at the end."""
        async with AsyncExitStack() as stack:
            for app in self.apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            if self.on_ready is not None:
                await self.on_ready(self)
            yield self

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        running = self.running()
        try:
            await running.__aenter__()
        except BaseException as exc:
            await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await running.__aexit__(None, None, None)
        await send({"type": "lifespan.shutdown.complete"})

    def _root_app(self, observability: bool) -> FastAPI:
        root = new_fastapi(title="Cerebrum platform", docs_url=None, redoc_url=None, openapi_url=None)
        errors.install_problem_handlers(root)
        apps = self.apps

        @root.get("/")
        async def index() -> dict[str, Any]:
            return {
                "platform": "Cerebrum Biology Academy",
                "gateway": "/api/",
                "openapi": "/api/openapi.json",
                "services": {name: {"docs": f"/docs/{name}", "openapi": f"/openapi/{name}.json"} for name in apps},
                "health": "/health",
                "ready": "/ready",
                "metrics": "/metrics",
            }

        @root.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "services": sorted(apps)}

        @root.get("/ready")
        async def ready(request: Request) -> Response:
            checks = {}
            for name, app in apps.items():
                for dependency, check in app.state.kit.checks.items():
                    checks[f"{name}.{dependency}"] = check
            return readiness_response(request, "platform", await run_checks(checks))

        @root.get("/metrics")
        async def metrics(request: Request) -> Response:
            body, content_type = render_metrics(request.headers.get("accept"))
            return Response(body, media_type=content_type)

        @root.get("/favicon.ico", include_in_schema=False)
        async def favicon() -> Response:
            return Response(status_code=204)

        if observability:
            root.add_middleware(ObservabilityMiddleware, service="platform")
        return root
