from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

import pytest
from pydantic import Field, ValidationError

from services.kit.schemas import QueryInput, StrictInput


class Slot(StrictInput):
    starts: time


class Booking(StrictInput):
    course_id: uuid.UUID
    at: datetime
    seats: int = Field(default=1, ge=1)
    share: float = 1.0
    paid: bool = False
    slots: list[Slot] = Field(default_factory=list)


class Page(QueryInput):
    limit: int = 20
    active: bool | None = None


BOOKING: dict[str, Any] = {
    "course_id": str(uuid.uuid4()),
    "at": "2026-03-01T09:30:00+05:30",
    "slots": [{"starts": "07:15"}],
}


def test_what_json_carries_as_text_is_parsed_from_text_even_nested() -> None:
    booking = Booking.model_validate({**BOOKING, "seats": 2, "share": 1, "paid": True})
    assert booking.course_id == uuid.UUID(BOOKING["course_id"])
    assert booking.at == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    assert booking.slots[0].starts == time(7, 15)
    assert booking.share == 1.0, "an integer is a number"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seats": "12"}, "seats"),
        ({"seats": True}, "seats"),
        ({"seats": 1.5}, "seats"),
        ({"share": "0.5"}, "share"),
        ({"share": True}, "share"),
        ({"paid": 1}, "paid"),
        ({"paid": "true"}, "paid"),
        ({"at": 1767225600}, "at"),  # not a Unix time
        ({"course_id": 5}, "course_id"),
        ({"slots": [{"starts": 3600}]}, "slots.0.starts"),
        ({"slots": [{"starts": "07:15", "ends": "08:00"}]}, "slots.0.ends"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_no_value_changes_type_and_no_unknown_field_is_ignored(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Booking.model_validate({**BOOKING, **change})
    assert [".".join(str(p) for p in e["loc"]) for e in refused.value.errors()] == [field]


def test_query_parameters_arrive_as_text_and_are_parsed_but_unknown_ones_are_refused() -> None:
    assert Page.model_validate({"limit": "50", "active": "true"}) == Page(limit=50, active=True)
    with pytest.raises(ValidationError):
        Page.model_validate({"limti": "50"})
