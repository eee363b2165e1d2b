"""Forwarding one request: identity at the edge, the rate limit, the side of the split, the call."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import Response
from limits import RateLimitItem
from opentelemetry import trace
from purgatory.domain.model import OpenedState
from starlette.datastructures import MutableHeaders

from observability.metrics import counter, histogram
from services.gateway.edge import Copy, CopyKey, EdgeCopies
from services.gateway.routing import Route, resolve
from services.gateway.settings import GatewaySettings
from services.gateway.shadow import ShadowMirror
from services.gateway.split import Side, TrafficSplit
from services.gateway.tracking import TrackedKeys
from services.kit.auth import Identity, TokenVerifier, bearer_token
from services.kit.edge import EDGE_HEADER
from services.kit.errors import DependencyUnavailable, NotFound, TooManyRequests, Unauthorized, problem
from services.kit.http import Reply, ServiceClient
from services.kit.proxies import forwarded_for
from services.kit.ratelimit import Decision, RateLimiter, parse_limits
from services.kit.revocations import SignedOutSessions

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
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-user-id",
        "x-user-role",
        "x-cerebrum-shadow",  # only the gateway marks a request as shadow traffic
    }
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DROP_FROM_REPLY = frozenset({*_HOP_BY_HOP, "content-encoding", "server", "date", "traceresponse", "x-request-id"})


_OWN_REPLY_HEADERS = frozenset(
    {"x-served-by", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-cache", "age", EDGE_HEADER}
)
# Characters for which Starlette's request.url (quoting, then urlsplit) gives a path or query
# other than the raw one; requests with any of them take that slower, exact way.
_URL_REWRITES = re.compile(r"[?#\\\t\r\n]")


@dataclass
class _Incoming:
    """What the proxy reads from a request's raw headers, in one pass."""

    authorization: str | None
    forwarded_for: str | None
    headers: dict[str, str]
    """The headers passed upstream: all but the hop-by-hop ones (for a repeated name, the last)."""
    fresh: Freshness = "any"
    """What the client's Cache-Control (or HTTP/1.0 Pragma) allows of the gateway's copies."""

    @classmethod
    def of(cls, raw: list[tuple[bytes, bytes]]) -> _Incoming:
        authorization = forwarded_for = None
        fresh: Freshness = "any"
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            lower = name.lower()
            if lower == "authorization" and authorization is None:
                authorization = value
            elif lower == "x-forwarded-for":  # one chain, however many header lines carry it
                forwarded_for = value if forwarded_for is None else f"{forwarded_for}, {value}"
            elif lower in ("cache-control", "pragma"):
                fresh = max(fresh, _freshness(value), key=_FRESHNESS.index)
            if lower not in _HOP_BY_HOP:
                headers[name] = value
        return cls(authorization, forwarded_for, headers, fresh)


Freshness = Literal["any", "no-cache", "no-store"]
_FRESHNESS: tuple[Freshness, ...] = ("any", "no-cache", "no-store")


def _freshness(value: str) -> Freshness:
    """A request's cache directives (RFC 9111 5.2.1, and Pragma's no-cache): ``no-cache`` asks for an
    answer from the service, not from a copy; ``no-store`` also asks that the answer not be kept."""
    directives = {part.strip().split("=", 1)[0].lower() for part in value.split(",")}
    if "no-store" in directives:
        return "no-store"
    return "no-cache" if "no-cache" in directives else "any"


def _path_and_query(request: Request) -> tuple[str, str]:
    """``request.url.path`` and ``request.url.query``, without building the URL when they are the raw ones."""
    scope = request.scope
    path: str = scope["path"]
    query = scope.get("query_string", b"").decode()
    if _URL_REWRITES.search(path) or _URL_REWRITES.search(query) or path.startswith("//"):
        return request.url.path, request.url.query
    return path, query


_served: dict[tuple[str, str, int], Any] = {}
_timed: dict[tuple[str, str], Any] = {}


def _count(prefix: str, side: str, status: int, seconds: float) -> None:
    served = _served.get((prefix, side, status))
    if served is None:
        served = _served[(prefix, side, status)] = REQUESTS.labels(prefix, side, str(status))
    timed = _timed.get((prefix, side))
    if timed is None:
        timed = _timed[(prefix, side)] = SECONDS.labels(prefix, side)
    served.inc()
    timed.observe(seconds)


@dataclass
class Gateway:
    settings: GatewaySettings
    verifier: TokenVerifier
    limiter: RateLimiter
    split: TrafficSplit
    clients: dict[tuple[str, Side], ServiceClient]
    limits: tuple[RateLimitItem, ...] = field(init=False)
    copies: EdgeCopies
    shadow: ShadowMirror | None = None
    tracked: TrackedKeys | None = None
    """What the copies' checks read in Redis, while Redis reports each change to it (None: always ask)."""
    signed_out: SignedOutSessions | None = None

    def __post_init__(self) -> None:
        self.limits = parse_limits(self.settings.rate_limits)

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        path, query = _path_and_query(request)
        route = resolve(request.method, path, self.settings.strip_prefix)
        if route is None:
            raise NotFound(f"No service answers {path}")
        incoming = _Incoming.of(request.scope["headers"])
        identity = self._identity(incoming.authorization, route)
        client = request.scope.get("client")
        client_key = str(identity.user_id) if identity else (client[0] if client else "anonymous")
        await self.split.refresh()
        side = self.split.side(route.prefix, client_key)
        # A read may be answered from the gateway's copy (services/gateway/edge.py), checked against
        # its generation and the caller's session: as last read, while Redis has reported no change
        # to them (services/gateway/tracking.py), else in the rate limit's round trip. Every request
        # counts against the limit, asking Redis only when its last decision for the caller does
        # not do (kit.ratelimit). A token that did not verify goes on to the service, which
        # refuses it.
        path_query = f"{path}?{query}"
        verified = identity is not None or not incoming.authorization
        keepable = request.method == "GET" and side == "service" and verified and incoming.fresh != "no-store"
        found = self.copies.find(side, path_query, identity) if keepable and incoming.fresh == "any" else None
        checks = self.copies.checks(found[1], identity) if found is not None else ()
        copy: Copy | None = None
        if found is not None:
            unasked = self._unasked(found, checks, identity, client_key)
            copy = found[1] if unasked is not None else None
        else:  # nothing to check but the limit: Redis's last decision for the caller may do
            unasked = self.limiter.hit_unasked(self.limits, "gateway", client_key)
        if unasked is not None:
            decision = unasked
        else:
            mark = self.tracked.mark() if self.tracked is not None and checks else None
            decision = await self._limit(client_key, read=checks)
            if mark is not None and decision.read is not None and self.tracked is not None:
                self.tracked.learn(mark, checks, decision.read)
            copy = found[1] if found is not None and await self.copies.answers(*found, checks, decision) else None
        try:
            reply = (
                copy.reply if copy is not None else await self._forward(request, route, side, identity, incoming, query)
            )
        except DependencyUnavailable as exc:
            response = self._unavailable(request, exc, route, side)
            response.headers["x-served-by"] = side
            _rate_headers(response.headers, decision)
        else:
            if copy is not None:  # kept as passed on: its headers were filtered when it was kept
                headers = {**reply.headers, "x-cache": "hit", "age": str(copy.age)}
                trace.get_current_span().set_attribute("cerebrum.edge_copy", "hit")
            else:
                headers = {
                    k: v
                    for k, v in reply.headers.items()
                    if (lower := k.lower()) not in _DROP_FROM_REPLY and lower not in _OWN_REPLY_HEADERS
                }
                if keepable and EDGE_HEADER in reply.headers:
                    self.copies.keep(side, path_query, identity, reply, headers)
            headers["x-served-by"] = side
            headers["ratelimit-limit"] = str(decision.limit)
            headers["ratelimit-remaining"] = str(max(decision.remaining, 0))
            headers["ratelimit-reset"] = str(decision.reset_after)
            response = Response(reply.body, status_code=reply.status, headers=headers)
            if self.shadow is not None:
                self.shadow.offer(
                    method=request.method,
                    route=route,
                    query=query,
                    served_by=side,
                    identity=identity,
                    headers=incoming.headers,
                    body=await request.body(),
                    reply=reply,
                )
        if self.tracked is not None and request.method not in _SAFE_METHODS:
            # What a write changed was reported before its service answered (or failed): the caller's
            # next read trusts nothing remembered until those reports have been read.
            self.tracked.barrier()
        _count(route.prefix, side, response.status_code, time.perf_counter() - started)
        return response

    def _unasked(
        self, found: tuple[CopyKey, Copy], checks: tuple[str, ...], identity: Identity | None, client_key: str
    ) -> Decision | None:
        """The rate limit's decision for a read its copy answers with no round trip, or None to ask Redis.

        The copy's generation and the caller's session must be known as Redis last had them, with
        no change reported since; and the limit's last decision for the caller must leave room.
        """
        if self.tracked is None:
            return None
        values = self.tracked.known(checks)
        if values is None or values[0] != found[1].stamp.generation or any(v is not None for v in values[1:]):
            return None
        if identity is not None and identity.session_id:
            # A sign-out made in this process is known here at once (services/kit/revocations.py).
            if self.signed_out is None or self.signed_out.signed_out(identity.session_id) is not False:
                return None
        decision = self.limiter.hit_unasked(self.limits, "gateway", client_key)
        if decision is None or not self.copies.serve(*found, values[0]):
            return None
        trace.get_current_span().set_attribute("cerebrum.edge_checks", "remembered")
        return decision

    def _identity(self, authorization: str | None, route: Route) -> Identity | None:
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

    async def limit_direct(self, scope: dict[str, Any]) -> Decision:
        """Counts a request the embedded platform serves on a service's own path, with the same limits.

        Its own bucket: a request that came through a gateway in front was counted there already.
        """
        authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        identity = None
        if authorization is not None:
            try:
                identity = self.verifier.verify(bearer_token(authorization))
            except Unauthorized:
                identity = None  # the service refuses the token itself; the caller counts as anonymous
        client = scope.get("client")
        client_key = str(identity.user_id) if identity else (client[0] if client else "anonymous")
        return await self._limit(client_key, "direct")

    async def _limit(self, client_key: str, bucket: str = "gateway", read: tuple[str, ...] = ()) -> Decision:
        # Every limit in one Redis round trip, stopping at the first that refuses; ``read`` in it too.
        decision = await self.limiter.hit_all(self.limits, bucket, client_key, read=read)
        if not decision.allowed:
            raise TooManyRequests(
                "Rate limit reached; slow down", retry_after=decision.retry_after, limit=decision.limit
            )
        return decision

    async def _forward(
        self, request: Request, route: Route, side: Side, identity: Identity | None, incoming: _Incoming, query: str
    ) -> Reply:
        headers = incoming.headers
        # The chain a trusted proxy sent, plus that proxy; from anyone else, only their own address.
        headers["x-forwarded-for"] = forwarded_for(request.scope, incoming.forwarded_for)
        headers["x-forwarded-proto"] = request.scope.get("scheme", "http")
        if identity is not None:
            headers["x-user-id"], headers["x-user-role"] = str(identity.user_id), identity.role
        path = route.path + (f"?{query}" if query else "")
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
