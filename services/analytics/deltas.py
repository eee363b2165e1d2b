"""Changes to the aggregates, gathered in memory from consumed events before one upsert per table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.analytics.models import BUCKETS, NO_COURSE, NO_TOPIC

LearnerKey = uuid.UUID
ActivityKey = tuple[uuid.UUID, date]
PerformanceKey = tuple[uuid.UUID, uuid.UUID, str]
ReportKey = tuple[uuid.UUID, str, date]
PresenceKey = tuple[date, uuid.UUID, str, uuid.UUID]

REPORT_COUNTS = (
    "active_learners",
    "events",
    "enrollments_started",
    "enrollments",
    "completions",
    "payments",
    "revenue_paise",
    "lessons_completed",
    "time_spent_seconds",
    "attempts",
    "score_sum",
    *BUCKETS,
    "questions_answered",
    "questions_correct",
)
ACTIVITY_COUNTS = ("events", "lessons_completed", "time_spent_seconds", "assessments", "score_sum")
PERFORMANCE_COUNTS = ("attempts", "score_sum", *BUCKETS, "questions_answered", "questions_correct")


def week_of(day: date) -> date:
    """The Monday of a day's week."""
    return day - timedelta(days=day.weekday())


def bucket_of(percentage: float) -> str:
    return BUCKETS[min(int(max(percentage, 0.0) // 10), len(BUCKETS) - 1)]


@dataclass
class Deltas:
    """What a set of events adds to each aggregate, keyed by the aggregate's primary key."""

    learners: dict[LearnerKey, dict[str, Any]] = field(default_factory=dict)
    activities: dict[ActivityKey, dict[str, Any]] = field(default_factory=dict)
    performance: dict[PerformanceKey, dict[str, Any]] = field(default_factory=dict)
    reports: dict[ReportKey, dict[str, Any]] = field(default_factory=dict)
    presence: set[PresenceKey] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        """Whether no event has added anything yet."""
        return not (self.learners or self.activities or self.performance or self.reports or self.presence)

    def learner(self, user_id: uuid.UUID, at: datetime) -> dict[str, Any]:
        at = at.astimezone(UTC)
        row = self.learners.get(user_id)
        if row is None:
            row = self.learners[user_id] = {
                "user_id": user_id,
                "cohort_week": week_of(at.date()),
                "registered_at": None,
                "first_seen_at": at,
                "last_seen_at": at,
                "assessments": 0,
                "score_sum": 0.0,
            }
        row["cohort_week"] = min(row["cohort_week"], week_of(at.date()))
        row["first_seen_at"] = min(row["first_seen_at"], at)
        row["last_seen_at"] = max(row["last_seen_at"], at)
        return row

    def activity(self, user_id: uuid.UUID, at: datetime) -> dict[str, Any]:
        at = at.astimezone(UTC)
        key = (user_id, at.date())
        row = self.activities.get(key)
        if row is None:
            row = self.activities[key] = {
                "user_id": user_id,
                "day": at.date(),
                "week": week_of(at.date()),
                "first_seen_at": at,
                "last_seen_at": at,
                **dict.fromkeys(ACTIVITY_COUNTS, 0),
            }
        row["first_seen_at"] = min(row["first_seen_at"], at)
        row["last_seen_at"] = max(row["last_seen_at"], at)
        return row

    def report(self, course_id: uuid.UUID | None, topic: str, day: date) -> dict[str, Any]:
        key = (course_id or NO_COURSE, topic, day)
        row = self.reports.get(key)
        if row is None:
            row = self.reports[key] = {
                "course_id": key[0],
                "topic": topic,
                "day": day,
                **dict.fromkeys(REPORT_COUNTS, 0),
            }
        return row

    def performance_of(
        self, user_id: uuid.UUID, course_id: uuid.UUID | None, topic: str, at: datetime
    ) -> dict[str, Any]:
        key = (user_id, course_id or NO_COURSE, topic)
        row = self.performance.get(key)
        if row is None:
            row = self.performance[key] = {
                "user_id": user_id,
                "course_id": key[1],
                "topic": topic,
                "best_percentage": None,
                "lessons_completed": 0,
                "progress_percent": None,
                "completed": False,
                "updated_at": at.astimezone(UTC),
                **dict.fromkeys(PERFORMANCE_COUNTS, 0),
            }
        row["updated_at"] = max(row["updated_at"], at.astimezone(UTC))
        return row

    def seen(
        self, user_id: uuid.UUID, at: datetime, *, course_id: uuid.UUID | None = None, topic: str = NO_TOPIC
    ) -> date:
        """Counts one event of a learner: their day, their course's day, and whether they were active."""
        day = at.astimezone(UTC).date()
        self.learner(user_id, at)
        self.activity(user_id, at)["events"] += 1
        self.report(course_id, NO_TOPIC, day)["events"] += 1
        self.presence.add((day, course_id or NO_COURSE, NO_TOPIC, user_id))
        if topic:
            self.report(course_id, topic, day)["events"] += 1
            self.presence.add((day, course_id or NO_COURSE, topic, user_id))
        return day

    def score(self, user_id: uuid.UUID, at: datetime, *, topic: str, percentage: float) -> None:
        """Adds a scored assessment to the learner's day, their topic, the topic's day and their rank."""
        percentage = min(max(percentage, 0.0), 100.0)
        bucket = bucket_of(percentage)
        day = at.astimezone(UTC).date()
        for row in (self.activity(user_id, at), self.learner(user_id, at)):
            row["assessments"] += 1
            row["score_sum"] += percentage
        perf = self.performance_of(user_id, None, topic, at)
        perf["best_percentage"] = max(perf["best_percentage"] or 0.0, percentage)
        for row in (perf, self.report(None, topic, day)):
            row["attempts"] += 1
            row["score_sum"] += percentage
            row[bucket] += 1

    def answers(self, user_id: uuid.UUID, at: datetime, *, topic: str, answered: int, correct: int) -> None:
        """Adds an assessment's answered and correct questions to the learner's topic and the topic's day."""
        answered = max(answered, 0)
        correct = min(max(correct, 0), answered)
        day = at.astimezone(UTC).date()
        rows = [self.performance_of(user_id, None, topic, at), self.report(None, NO_TOPIC, day)]
        if topic != NO_TOPIC:
            rows.append(self.report(None, topic, day))
        for row in rows:
            row["questions_answered"] += answered
            row["questions_correct"] += correct

    def __bool__(self) -> bool:
        return bool(self.learners or self.activities or self.performance or self.reports or self.presence)
