"""Request bodies over their route's limit are refused with 413 before they are read whole.

A declared Content-Length over the limit is refused at once, before any of the body is read; a
chunked body is counted as it streams in (Starlette's RequestBodyLimitResponder) and refused as
soon as it passes the limit, so memory never holds more than the limit. Every route has the
default limit (``max_body_bytes``) unless the service names a larger one for it by path template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitResponder
from starlette.routing import compile_path

from services.kit.errors import PayloadTooLarge, ProblemResponse, problem


class BodyLimit:
    """ASGI middleware: each request's body may be at most its route's limit."""

    def __init__(self, app: Any, *, default: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.routes = [(compile_path(path)[0], limit) for path, limit in (routes or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.routes:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            scope[MAX_BODY_SIZE_SCOPE_KEY] = limit
            await too_large(Request(scope), limit)(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send)


def _content_length(scope: Any) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def too_large(request: Request, limit: int) -> ProblemResponse:
    return problem(
        request,
        status=413,
        type_=PayloadTooLarge.type,
        title=PayloadTooLarge.title,
        detail=f"The request body is over this route's limit of {limit} bytes",
        limit=limit,
    )


def install_body_limit(app: FastAPI, *, default: int, routes: Mapping[str, int] | None = None) -> None:
    """Limits every route's request body; a body that passes the limit mid-stream gets the same 413 problem."""

    async def _refused(request: Request, _exc: Exception) -> ProblemResponse:
        return too_large(request, int(request.scope.get(MAX_BODY_SIZE_SCOPE_KEY, default)))

    app.add_middleware(BodyLimit, default=default, routes=routes)
    app.add_exception_handler(413, _refused)
