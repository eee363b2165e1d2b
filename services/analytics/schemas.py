"""What the analytics API takes and returns.

Ingested events are validated as TypedDicts by one ``TypeAdapter`` (pydantic-core, no model
instance per event) so that a batch of a thousand costs about two milliseconds; ids stay
strings (checked against the UUID pattern) because the COPY into PostgreSQL encodes them as is.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

from services.kit.schemas import AwareTimestamp, StrictInput

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UuidText = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Topic = Annotated[str, StringConstraints(min_length=1, max_length=120)]


class EventProperties(TypedDict):
    """Free-form, but the keys the aggregates read are checked: time, topic and answer."""

    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    seconds: NotRequired[Annotated[int, Field(ge=0, le=86_400, description="Time spent, added to the learner's day")]]
    topic: NotRequired[Topic]
    correct: NotRequired[bool]


class EventIn(TypedDict):
    """One learning event, its id made by the client so that a retried send is stored once."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    event_id: UuidText
    user_id: UuidText
    type: Annotated[EventType, Field(description="lesson_viewed, video_played, question_answered, page_view, …")]
    occurred_at: AwareTimestamp
    course_id: NotRequired[UuidText | None]
    lesson_id: NotRequired[UuidText | None]
    properties: NotRequired[EventProperties]


EVENTS = TypeAdapter(list[EventIn])
ONE_EVENT = TypeAdapter(EventIn)


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def ingest_request_schema(max_events: int) -> dict[str, Any]:
    """The OpenAPI request body of ``POST /analytics/events``: one event, or ``{"events": [...]}``."""
    raw = ONE_EVENT.json_schema()
    event = _inline(raw, raw.get("$defs", {}))
    batch = {
        "type": "object",
        "properties": {"events": {"type": "array", "items": event, "minItems": 1, "maxItems": max_events}},
        "required": ["events"],
        "additionalProperties": False,
    }
    return {"required": True, "content": {"application/json": {"schema": {"oneOf": [event, batch]}}}}


class IngestResult(BaseModel):
    received: int
    stored: int = Field(description="New events written; the rest had been stored before (same event_id)")
    duplicates: int


class ActivityIn(StrictInput):
    """A heartbeat from the learner's screen: how long they have been at something."""

    course_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    seconds: int = Field(ge=1, le=3600)
    activity: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class ActivityRecorded(BaseModel):
    event_id: uuid.UUID
    seconds: int


class DayActivity(BaseModel):
    day: date
    events: int
    lessons_completed: int
    time_spent_seconds: int


class DayScore(BaseModel):
    day: date
    assessments: int
    average_percentage: float


class TopicPerformance(BaseModel):
    course_id: uuid.UUID | None
    topic: str | None
    attempts: int
    average_percentage: float | None
    best_percentage: float | None
    questions_answered: int
    questions_correct: int
    lessons_completed: int
    completed: bool


class Rank(BaseModel):
    position: int
    learners: int


class Dashboard(BaseModel):
    user_id: uuid.UUID
    lessons_completed: int
    time_spent_seconds: int
    events: int
    active_days: int
    current_streak_days: int
    longest_streak_days: int
    assessments: int
    average_percentage: float | None
    rank: Rank | None = Field(description="Among learners with a scored assessment, by average percentage")
    scores_over_time: list[DayScore]
    recent_days: list[DayActivity]
    performance: list[TopicPerformance]


class ScoreBucket(BaseModel):
    from_percent: int
    to_percent: int
    count: int


class PerformanceRow(BaseModel):
    course_id: uuid.UUID | None
    topic: str | None
    attempts: int
    average_percentage: float | None
    score_distribution: list[ScoreBucket]
    enrollments: int
    completions: int
    completion_rate: float | None
    questions_answered: int
    accuracy: float | None
    active_learner_days: int


class PerformanceReport(BaseModel):
    since: date
    until: date
    rows: list[PerformanceRow]


class DailyActive(BaseModel):
    day: date
    active_learners: int


class Cohort(BaseModel):
    week: date
    learners: int
    retention: list[float] = Field(description="Share of the cohort active in its week 0, 1, 2, …")


class Engagement(BaseModel):
    as_of: date
    daily_active: int
    weekly_active: int
    monthly_active: int
    daily: list[DailyActive]
    cohorts: list[Cohort]


class LiveSnapshot(BaseModel):
    at: datetime
    active_learners: int
    window_seconds: int
    events_per_minute: int
