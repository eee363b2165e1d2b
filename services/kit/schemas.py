"""What every service's request bodies and query models share.

A body is validated as strictly as JSON is typed: ``"12"`` is not a number, ``true`` is not 1,
``1.5`` is not an integer, and an unknown field is refused. FastAPI validates the decoded body in
pydantic's Python mode, where strict mode would also refuse the UUIDs, timestamps, dates and times
that JSON can only carry as text; ``StrictInput`` parses those from text (and only from text), so
a service declares ``uuid.UUID`` or ``datetime`` fields as usual.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler, Strict
from pydantic_core import CoreSchema, core_schema

_CARRIED_AS_TEXT = frozenset({"uuid", "datetime", "date", "time"})


def _text_only(value: Any) -> Any:
    # Lax parsing would read a number as a Unix time: JSON sends these types as strings.
    if isinstance(value, bool | int | float):
        raise ValueError("send this as a string")
    return value


def _parse_from_text(schema: Any) -> Any:
    """A copy of a core schema in which the types JSON carries as text parse from text."""
    if isinstance(schema, list):
        return [_parse_from_text(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: _parse_from_text(value) for key, value in schema.items()}
    if copied.get("type") in _CARRIED_AS_TEXT and "strict" not in copied:  # a field's own Strict() wins
        copied["strict"] = False
        return core_schema.no_info_before_validator_function(_text_only, copied)
    return copied


class StrictInput(BaseModel):
    """A JSON request body: no coercion between types, unknown fields refused (a typo is a 422), text trimmed."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel], handler: GetCoreSchemaHandler) -> CoreSchema:
        schema: CoreSchema = _parse_from_text(handler(source))
        return schema


class QueryInput(BaseModel):
    """Query parameters: they all arrive as text, so numbers are parsed from it; unknown ones are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


AwareTimestamp = Annotated[AwareDatetime, Strict(False), BeforeValidator(_text_only)]
"""A time-zoned timestamp parsed from text, for strict bodies that are not a ``StrictInput`` (a TypedDict)."""
