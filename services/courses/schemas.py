from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from services.kit.schemas import QueryInput, StrictInput

Grade = Literal["11", "12", "repeater"]
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
MAX_PRICE_PAISE = 10_000_000_00  # ₹1 crore: far above any course, far below int32 overflow


class CourseFilters(QueryInput):
    """Query parameters of ``GET /courses``; unknown parameters are refused, not ignored."""

    grade: Grade | None = None
    subject: str | None = Field(default=None, min_length=1, max_length=60)
    min_price: int | None = Field(default=None, ge=0, le=MAX_PRICE_PAISE, description="in paise")
    max_price: int | None = Field(default=None, ge=0, le=MAX_PRICE_PAISE, description="in paise")
    active: bool | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _price_range(self) -> CourseFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price must not be above max_price")
        return self


class LessonIn(StrictInput):
    title: str = Field(min_length=1, max_length=200)
    duration_minutes: int = Field(ge=1, le=600)
    summary: str = Field(default="", max_length=2000)


class CourseCreate(StrictInput):
    slug: str = Field(min_length=3, max_length=80, pattern=SLUG_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    subject: str = Field(min_length=1, max_length=60)
    grade: Grade
    price_paise: int = Field(ge=0, le=MAX_PRICE_PAISE)
    currency: Literal["INR"] = "INR"
    capacity: int = Field(ge=0, le=100_000)
    is_active: bool = True
    is_published: bool = False
    lessons: list[LessonIn] = Field(default_factory=list, max_length=100)


class CourseUpdate(StrictInput):
    """Fields to change; those left out stay as they are. ``lessons``, when sent, replaces the list."""

    slug: str | None = Field(default=None, min_length=3, max_length=80, pattern=SLUG_PATTERN)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    subject: str | None = Field(default=None, min_length=1, max_length=60)
    grade: Grade | None = None
    price_paise: int | None = Field(default=None, ge=0, le=MAX_PRICE_PAISE)
    capacity: int | None = Field(default=None, ge=0, le=100_000)
    is_active: bool | None = None
    is_published: bool | None = None
    lessons: list[LessonIn] | None = Field(default=None, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise ValueError("send at least one field to change")
            nulls = sorted(name for name, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return data


class LessonOut(BaseModel):
    id: uuid.UUID
    position: int
    title: str
    duration_minutes: int
    summary: str


class CourseSummary(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    subject: str
    grade: Grade
    price_paise: int
    currency: str
    capacity: int
    seats_left: int
    is_active: bool
    is_published: bool
    created_at: datetime
    updated_at: datetime


class CourseDetail(CourseSummary):
    lessons: list[LessonOut]


class CoursePage(BaseModel):
    items: list[CourseSummary]
    total: int
    limit: int
    offset: int


class SearchHit(CourseSummary):
    rank: float


class SearchResults(BaseModel):
    query: str
    items: list[SearchHit]


class Topic(BaseModel):
    position: int
    title: str


class Unit(BaseModel):
    position: int
    title: str
    topics: list[Topic]


class Curriculum(BaseModel):
    grade: Grade
    units: list[Unit]


class ContentFileOut(BaseModel):
    id: uuid.UUID
    lesson_id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class SeatReserveRequest(StrictInput):
    reservation_id: uuid.UUID
    student_id: uuid.UUID


class SeatReleaseRequest(StrictInput):
    reservation_id: uuid.UUID


class SeatReservationOut(BaseModel):
    reservation_id: uuid.UUID
    course_id: uuid.UUID
    student_id: uuid.UUID | None
    status: Literal["held", "released"]
    seats_left: int
