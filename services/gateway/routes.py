from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from observability.problems import PROBLEM_JSON
from services.gateway.proxy import Gateway, merged_openapi
from services.gateway.routing import ROUTES
from services.kit.deps import AdminUser
from services.kit.schemas import StrictInput

router = APIRouter()
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class WeightChange(StrictInput):
    weight: int = Field(ge=0, le=100, description="Percent of the prefix's traffic sent to the extracted service.")


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.get("/gateway/weights", tags=["gateway"])
async def weights(request: Request, _admin: AdminUser) -> dict[str, Any]:
    """Shows each prefix's share of traffic to the extracted service."""
    gateway = _gateway(request)
    await gateway.split.refresh(force=True)
    return {"monolith": gateway.split.has_monolith, "weights": gateway.split.current(sorted(ROUTES))}


@router.put("/gateway/weights/{prefix}", tags=["gateway"])
async def set_weight(prefix: str, body: WeightChange, request: Request, admin: AdminUser) -> dict[str, Any]:
    """Sets a prefix's share of traffic to the extracted service (0 to 100)."""
    from services.kit.errors import NotFound

    if prefix not in ROUTES:
        raise NotFound(f"No route prefix {prefix!r}; known: {', '.join(sorted(ROUTES))}")
    weight = await _gateway(request).split.set_weight(prefix=prefix, weight=body.weight, admin=admin.user_id)
    return {"prefix": prefix, "weight": weight}


@router.get("/api/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> dict[str, Any]:
    """The merged OpenAPI document of the whole public API."""
    return await merged_openapi(_gateway(request), sorted(set(ROUTES.values())))


@router.api_route("/api/{path:path}", methods=_METHODS, include_in_schema=False)
async def forward(request: Request) -> Response:
    gateway = _gateway(request)
    response = await gateway.handle(request)
    return _as_called(response, request.scope["path"], gateway.settings.strip_prefix)


class Forwarding(BaseRoute):
    """Every request to ``/api/...`` straight to ``forward``, ahead of the app's other routes.

    ``forward`` takes the request as it is, so FastAPI's endpoint machinery (a dependency solver,
    an exit stack, a response wrapper) did nothing for it but cost about a tenth of the gateway's
    CPU on each request. Errors still reach the app's exception handlers, the route is still
    labelled ``/api/{path}``, and the merged OpenAPI document and any other method (405)
    still go to their FastAPI routes.
    """

    path, path_format = "/api/{path:path}", "/api/{path}"
    _methods = frozenset(_METHODS)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith("/api/")
            and path != "/api/openapi.json"
            and scope["method"] in self._methods
            and not scope.get("root_path")
        ):
            return Match.FULL, {"route": self, "path_params": {"path": path[5:]}}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await forward(Request(scope, receive))
        await response(scope, receive, send)


def _as_called(response: Response, path: str, prefix: str) -> Response:
    """Names, in a service's problem, the path the client called (``/api/auth/refresh``), not the service's."""
    raw = getattr(response, "body", None)  # a streamed reply has none, and is never a problem
    problem = response.headers.get("content-type", "").startswith(PROBLEM_JSON)
    if not prefix or not problem or not isinstance(raw, bytes):
        return response
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return response
    if not isinstance(body, dict) or body.get("instance") != path.removeprefix(prefix):
        return response
    body["instance"] = path
    response.body = orjson.dumps(body)
    response.headers["content-length"] = str(len(response.body))
    return response
