"""The events this service announces, written to its outbox in the transaction of the change."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.assessments.models import OUTBOX, AssessmentResult
from services.kit import events

ASSESSMENT_SUBMITTED = "assessment.submitted"
ASSESSMENT_COMPLETED = "assessment.completed"


async def record(db: AsyncSession, *, type: str, payload: dict[str, Any]) -> None:
    """Adds an event to the outbox of the session's transaction."""
    # Through orjson so that ids and datetimes are stored as the strings a consumer will read.
    await events.record_event(db, OUTBOX, type_=type, source="assessments", data=orjson.loads(orjson.dumps(payload)))


async def announce_scored_attempt(db: AsyncSession, *, result: AssessmentResult, duration_seconds: int) -> None:
    """Records that an attempt was submitted and that its assessment is complete."""
    await record(
        db,
        type=ASSESSMENT_SUBMITTED,
        payload={
            "attempt_id": result.attempt_id,
            "user_id": result.user_id,
            "topic": result.topic,
            "question_count": result.question_count,
            "duration_seconds": duration_seconds,
            "submitted_at": result.created_at,
        },
    )
    await record(
        db,
        type=ASSESSMENT_COMPLETED,
        payload={
            "result_id": result.id,
            "attempt_id": result.attempt_id,
            "user_id": result.user_id,
            "topic": result.topic,
            "score": result.score,
            "max_score": result.max_score,
            "percentage": result.percentage,
            "correct_count": result.correct_count,
            "rating_after": result.rating_after,
            "predicted_neet_score": result.predicted_neet_score,
            "completed_at": result.created_at,
        },
    )
