"""Problem Details (RFC 9457) for every error: domain errors carry their status and type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from observability.problems import PROBLEM_JSON, problem_type

log = structlog.get_logger("cerebrum.errors")


class ProblemResponse(Response):
    """A problem+json response body, serialised with orjson."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class DomainError(Exception):
    """A rule of the academy was broken; rendered as problem+json with its own status."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, type, title = 409, "conflict", "Conflict"


class Unauthorized(DomainError):
    status, type, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(DomainError):
    status, type, title = 403, "forbidden", "Forbidden"


class InvalidInput(DomainError):
    status, type, title = 422, "invalid-input", "Invalid input"


class PayloadTooLarge(DomainError):
    """A body over its limit; a service names its own kind (``file-too-large``) by subclassing."""

    status, type, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(DomainError):
    status, type, title = 415, "unsupported-media-type", "Unsupported media type"


class TooManyRequests(DomainError):
    status, type, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extensions)
        self.headers["Retry-After"] = str(retry_after)


class DependencyUnavailable(DomainError):
    """A database, cache, broker or upstream service cannot be reached: 503 naming it."""

    status, type, title = 503, "dependency-unavailable", "A dependency is unavailable"

    def __init__(self, dependency: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{dependency} is unavailable; try again shortly", dependency=dependency)
        self.headers["Retry-After"] = "5"


def problem(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """Builds one problem+json response, with the request id for support."""
    body: dict[str, Any] = {
        "type": problem_type(type_),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


# The framework's own refusals (no such route, wrong method), named like the domain errors' types.
_HTTP_PROBLEMS = {
    401: (Unauthorized.type, Unauthorized.title),
    404: (NotFound.type, NotFound.title),
    405: ("method-not-allowed", "Method not allowed"),
}

_DEPENDENCY_ERRORS: list[tuple[type[Exception], str, Callable[[BaseException], bool] | None]] = []


def register_dependency_error(
    exc_type: type[Exception], dependency: str, *, when: Callable[[BaseException], bool] | None = None
) -> None:
    """Declares that an exception type means a dependency is down (rendered as 503).

    ``when`` narrows a type that is not the dependency's own (a refused connection is the
    database's only when the database driver was making it).
    """
    _DEPENDENCY_ERRORS.append((exc_type, dependency, when))


def dependency_of(exc: BaseException) -> str | None:
    """Names the dependency an exception comes from, walking its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DependencyUnavailable):
            return str(seen.extensions["dependency"])
        for exc_type, name, when in _DEPENDENCY_ERRORS:
            if isinstance(seen, exc_type) and (when is None or when(seen)):
                return name
        seen = seen.__cause__ or seen.__context__
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Renders every 4xx and 5xx the app can produce as problem+json."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> ProblemResponse:
        return problem(
            request,
            status=exc.status,
            type_=exc.type,
            title=exc.title,
            detail=exc.detail,
            headers=exc.headers or None,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "message": err.get("msg", "invalid"),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors)
        return problem(
            request,
            status=422,
            type_="invalid-input",
            title="Invalid input",
            detail=f"Invalid value for: {fields}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        type_, title = _HTTP_PROBLEMS.get(exc.status_code, (f"http-{exc.status_code}", "HTTP error"))
        return problem(
            request,
            status=exc.status_code,
            type_=type_,
            title=title,
            detail=str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def _dependency(request: Request, exc: Exception) -> ProblemResponse:
        dependency = dependency_of(exc)
        if dependency is None:  # a type registered with a ``when`` that does not hold: unexpected
            raise exc
        log.warning("dependency_unavailable", dependency=dependency, error=type(exc).__name__)
        return problem(
            request,
            status=503,
            type_="dependency-unavailable",
            title="A dependency is unavailable",
            detail=f"{dependency} is unavailable; try again shortly",
            headers={"Retry-After": "5"},
            dependency=dependency,
        )

    # Registered per type so that they are handled inside the app, where the telemetry middleware
    # sees the 503; only truly unexpected errors fall through to the catch-all below.
    for exc_type, _name, _when in _DEPENDENCY_ERRORS:
        app.add_exception_handler(exc_type, _dependency)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
        if dependency_of(exc) is not None:
            return await _dependency(request, exc)
        return problem(
            request,
            status=500,
            type_="internal-error",
            title="Internal error",
            detail="The request failed unexpectedly; it has been logged with its request id",
        )
