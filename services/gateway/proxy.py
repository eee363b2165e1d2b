"""Forwarding one request: identity at the edge, the rate limit, the side of the split, the call."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from purgatory.domain.model import OpenedState
from starlette.datastructures import MutableHeaders

from observability.metrics import counter, histogram
from services.gateway.routing import Route, resolve
from services.gateway.settings import GatewaySettings
from services.gateway.split import Side, TrafficSplit
from services.kit.auth import Identity, TokenVerifier, bearer_token
from services.kit.errors import DependencyUnavailable, NotFound, TooManyRequests, Unauthorized, problem
from services.kit.http import Reply, ServiceClient
from services.kit.ratelimit import Decision, RateLimiter

REQUESTS = counter(
    "cerebrum_gateway_requests_total", "Requests through the gateway by prefix and side.", ("prefix", "side", "status")
)
SECONDS = histogram(
    "cerebrum_gateway_request_duration_seconds", "Time through the gateway by prefix and side.", ("prefix", "side")
)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-user-id",
        "x-user-role",
    }
)
_DROP_FROM_REPLY = frozenset({*_HOP_BY_HOP, "content-encoding", "server", "date", "traceresponse", "x-request-id"})


@dataclass
class Gateway:
    settings: GatewaySettings
    verifier: TokenVerifier
    limiter: RateLimiter
    split: TrafficSplit
    clients: dict[tuple[str, Side], ServiceClient]

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        route = resolve(request.method, request.url.path, self.settings.strip_prefix)
        if route is None:
            raise NotFound(f"No service answers {request.url.path}")
        identity = self._identity(request, route)
        client_key = str(identity.user_id) if identity else (request.client.host if request.client else "anonymous")
        decision = await self._limit(client_key)
        await self.split.refresh()
        side = self.split.side(route.prefix, client_key)
        try:
            reply = await self._forward(request, route, side, identity)
        except DependencyUnavailable as exc:
            response = self._unavailable(request, exc, route, side)
        else:
            headers = {k: v for k, v in reply.headers.items() if k.lower() not in _DROP_FROM_REPLY}
            response = Response(reply.body, status_code=reply.status, headers=headers)
        response.headers["x-served-by"] = side
        _rate_headers(response.headers, decision)
        REQUESTS.labels(route.prefix, side, str(response.status_code)).inc()
        SECONDS.labels(route.prefix, side).observe(time.perf_counter() - started)
        return response

    def _identity(self, request: Request, route: Route) -> Identity | None:
        authorization = request.headers.get("authorization")
        if authorization is None:
            if route.public:
                return None
            raise Unauthorized("Send an access token: Authorization: Bearer <token>")
        try:
            return self.verifier.verify(bearer_token(authorization))
        except Unauthorized:
            if route.public:
                return None
            raise

    async def _limit(self, client_key: str) -> Decision:
        tightest: Decision | None = None
        for limit in self.settings.rate_limits.split(";"):
            decision = await self.limiter.hit(limit, "gateway", client_key)
            if not decision.allowed:
                raise TooManyRequests(
                    "Rate limit reached; slow down", retry_after=decision.retry_after, limit=decision.limit
                )
            if tightest is None or decision.remaining < tightest.remaining:
                tightest = decision
        assert tightest is not None
        return tightest

    async def _forward(self, request: Request, route: Route, side: Side, identity: Identity | None) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        client = request.client.host if request.client else ""
        forwarded = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {client}" if forwarded else client
        headers["x-forwarded-proto"] = request.url.scheme
        if identity is not None:
            headers["x-user-id"], headers["x-user-role"] = str(identity.user_id), identity.role
        path = route.path + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        return await self.clients[(route.service, side)].request(
            request.method, path, content=body or None, headers=headers
        )

    def _unavailable(self, request: Request, exc: DependencyUnavailable, route: Route, side: Side) -> Response:
        cause = exc.__cause__
        upstream = route.service if side == "service" else "monolith"
        if isinstance(cause, TimeoutError):
            status, title = 504, "Upstream timed out"
        elif isinstance(cause, OpenedState):
            status, title = 503, "Upstream unavailable (circuit open)"
        else:
            status, title = 502, "Upstream unreachable"
        return problem(
            request,
            status=status,
            type_=f"upstream-{status}",
            title=title,
            detail=f"{upstream} did not answer: {exc.detail}",
            headers={"Retry-After": "5"},
            upstream=upstream,
        )


def _rate_headers(headers: MutableHeaders, decision: Decision) -> None:
    headers["ratelimit-limit"] = str(decision.limit)
    headers["ratelimit-remaining"] = str(max(decision.remaining, 0))
    headers["ratelimit-reset"] = str(decision.reset_after)


async def merged_openapi(gateway: Gateway, names: list[str]) -> dict[str, object]:
    """One OpenAPI document of the public API: every service's paths under the gateway's prefix."""
    merged: dict[str, object] = {
        "openapi": "3.1.0",
        "info": {"title": "Cerebrum Biology Academy API", "version": gateway.settings.service_version},
    }
    paths: dict[str, object] = {}
    schemas: dict[str, object] = {}
    for name in names:
        client = gateway.clients.get((name, "service"))
        if client is None:
            continue
        try:
            reply = await client.request("GET", f"/openapi/{name}.json")
        except DependencyUnavailable:
            continue
        if reply.status != 200:
            continue
        document = reply.json()
        for path, item in document.get("paths", {}).items():
            paths[gateway.settings.strip_prefix + path] = item
        schemas.update(document.get("components", {}).get("schemas", {}))
    merged["paths"] = dict(sorted(paths.items()))
    merged["components"] = {
        "schemas": schemas,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    }
    return merged
