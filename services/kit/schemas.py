"""What every service's request bodies share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictInput(BaseModel):
    """A request body: unknown fields are refused (a typo is a 422, not silently ignored), text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
