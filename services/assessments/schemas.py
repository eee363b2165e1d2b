from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from services.kit.schemas import StrictInput

TOPIC_PATTERN = r"^[a-z][a-z0-9-]{1,63}$"
OVERALL = "overall"
Topic = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=TOPIC_PATTERN)]
Difficulty = Annotated[int, Field(ge=1, le=5)]
Kind = Literal["mcq", "free_text"]


class RubricPoint(StrictInput):
    """One idea a good answer states; any of its keywords shows the answer states it."""

    point: str = Field(min_length=1, max_length=200)
    keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(min_length=1, max_length=20)
    weight: float = Field(default=1.0, gt=0, le=10)


class QuestionCreate(StrictInput):
    topic: Topic
    difficulty: Difficulty
    kind: Kind
    stem: str = Field(min_length=5, max_length=2000)
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] | None = Field(
        default=None, max_length=8
    )
    correct_option: int | None = None
    rubric: list[RubricPoint] | None = Field(default=None, max_length=20)
    explanation: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> QuestionCreate:
        if self.topic == OVERALL:
            raise ValueError(f"'{OVERALL}' is the leaderboard of all topics, not a topic")
        if self.kind == "mcq":
            if self.options is None or len(self.options) < 2:
                raise ValueError("a multiple-choice question needs at least 2 options")
            if len({o.lower() for o in self.options}) != len(self.options):
                raise ValueError("the options must all differ")
            if self.correct_option is None or not 0 <= self.correct_option < len(self.options):
                raise ValueError(f"correct_option must be an option index from 0 to {len(self.options) - 1}")
            if self.rubric is not None:
                raise ValueError("a multiple-choice question is marked by correct_option, not a rubric")
        else:
            if not self.rubric:
                raise ValueError("a free-text question needs a rubric of at least one point")
            if self.options is not None or self.correct_option is not None:
                raise ValueError("a free-text question has no options")
        return self


class AnswerIn(StrictInput):
    question_id: uuid.UUID
    choice: int | None = Field(default=None, ge=0, le=7)
    text: str | None = Field(default=None, min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _one_kind_of_answer(self) -> AnswerIn:
        if (self.choice is None) == (self.text is None):
            raise ValueError("send either choice (multiple choice) or text (free text), not both or neither")
        return self


class SubmitRequest(StrictInput):
    attempt_id: uuid.UUID
    topic: Topic
    answers: list[AnswerIn] = Field(min_length=1, max_length=200)
    duration_seconds: int = Field(ge=0, le=24 * 3600)

    @model_validator(mode="after")
    def _each_question_once(self) -> SubmitRequest:
        if len({a.question_id for a in self.answers}) != len(self.answers):
            raise ValueError("each question may be answered once per attempt")
        return self


class VariantsRequest(StrictInput):
    count: int = Field(default=3, ge=1, le=10)


class QuestionOut(BaseModel):
    """A question as a student sees it: never its answer."""

    id: uuid.UUID
    topic: str
    difficulty: int
    kind: Kind
    stem: str
    options: list[str] | None = None


class QuestionAdminOut(QuestionOut):
    correct_option: int | None
    rubric: list[RubricPoint] | None
    explanation: str | None
    rating: float
    created_at: datetime


class TopicOut(BaseModel):
    topic: str
    questions: int


class TopicsOut(BaseModel):
    items: list[TopicOut]


class RandomQuestions(BaseModel):
    attempt_id: uuid.UUID
    topic: str
    difficulty: int
    difficulty_chosen_by: Literal["request", "rating"]
    source: Literal["pool", "database"]
    """``database`` when Redis is down: questions still come, drawn straight from the database (still no repeats)."""
    questions: list[QuestionOut]


class ResponseOut(BaseModel):
    question_id: uuid.UUID
    choice: int | None
    text: str | None
    score: float
    correct: bool
    feedback: str | None


class Prediction(BaseModel):
    neet_biology_score: int
    out_of: int = 360
    method: str


class ResultOut(BaseModel):
    id: uuid.UUID
    attempt_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    score: float
    max_score: float
    percentage: float
    correct_count: int
    question_count: int
    duration_seconds: int
    rating_before: float
    rating_after: float
    recommended_difficulty: int
    prediction: Prediction
    responses: list[ResponseOut]
    created_at: datetime


class LeaderboardEntry(BaseModel):
    rank: int
    user_id: uuid.UUID
    points: float


class LeaderboardOut(BaseModel):
    category: str
    entries: list[LeaderboardEntry]
    me: LeaderboardEntry | None
    """The caller's own place, or null before their first scored attempt in this category."""


class VariantDraft(BaseModel):
    topic: str
    difficulty: int
    kind: Kind
    stem: str
    options: list[str] | None
    correct_option: int | None
    rubric: list[RubricPoint] | None
    explanation: str | None


class VariantsOut(BaseModel):
    source_question_id: uuid.UUID
    generator: str
    status: Literal["draft"] = "draft"
    """Drafts for review: none is a live question until an admin creates it."""
    variants: list[VariantDraft]
