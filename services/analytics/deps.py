from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from pydantic import ValidationError

from services.analytics.schemas import EVENTS, EventIn
from services.analytics.service import AnalyticsContext
from services.kit.deps import from_app_state
from services.kit.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType


class BatchTooLarge(PayloadTooLarge):
    type, title = "batch-too-large", "Batch too large"


AnalyticsDep = Annotated[AnalyticsContext, Depends(from_app_state("analytics"))]


def _problem_errors(exc: ValidationError, prefix: str) -> InvalidInput:
    errors = [
        {"field": ".".join([prefix, *(str(p) for p in err["loc"])]).strip("."), "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0]["field"]
    parts = first.split(".")
    where = f"Event {parts[1]}" if prefix == "events" and len(parts) > 1 and parts[1].isdigit() else "The event"
    return InvalidInput(f"{where} is invalid: {first}: {errors[0]['message']}", errors=errors)


async def read_events(request: Request, ctx: AnalyticsDep) -> list[EventIn]:
    """Reads one event or ``{"events": [...]}``; the whole batch is refused if any event is invalid."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        # A browser sends text/plain cross-site without asking first (no CORS preflight); the
        # events need a bearer token anyway, which a beacon cannot carry, so only JSON is taken.
        raise UnsupportedMediaType(f"Send the events as application/json, not {media_type[:80]}")
    limit = ctx.settings.max_batch_events
    try:
        body: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("The body is not JSON", errors=[{"field": "body", "message": str(exc)}]) from exc
    batch = isinstance(body, dict) and "events" in body
    if batch and (extra := set(body) - {"events"}):
        raise InvalidInput("A batch has only events", errors=[{"field": sorted(extra)[0], "message": "not allowed"}])
    items = body["events"] if batch else [body]
    if not isinstance(items, list) or not items:
        raise InvalidInput("events must be a non-empty list", errors=[{"field": "events", "message": "empty"}])
    if len(items) > limit:
        raise BatchTooLarge(f"{len(items)} events in one batch; the limit is {limit}", limit=limit)
    try:
        return EVENTS.validate_python(items)
    except ValidationError as exc:
        raise _problem_errors(exc, "events" if batch else "") from exc


EventsDep = Annotated[list[EventIn], Depends(read_events)]
