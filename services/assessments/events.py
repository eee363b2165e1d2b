"""The events this service announces, written to its outbox in the transaction of the change."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.assessments.models import AssessmentResult
from services.contracts.events import AssessmentCompleted, AssessmentSubmitted
from services.kit.uow import UnitOfWork


async def announce_scored_attempt(db: AsyncSession, *, result: AssessmentResult, duration_seconds: int) -> None:
    """Records that an attempt was submitted and that its assessment is complete."""
    submitted = AssessmentSubmitted(
        attempt_id=result.attempt_id,
        user_id=result.user_id,
        topic=result.topic,
        question_count=result.question_count,
        duration_seconds=duration_seconds,
        submitted_at=result.created_at,
    )
    await UnitOfWork.of(db).record(submitted)
    completed = AssessmentCompleted(
        result_id=result.id,
        attempt_id=result.attempt_id,
        user_id=result.user_id,
        topic=result.topic,
        score=result.score,
        max_score=result.max_score,
        percentage=result.percentage,
        correct_count=result.correct_count,
        question_count=result.question_count,
        rating_after=result.rating_after,
        predicted_neet_score=result.predicted_neet_score,
        completed_at=result.created_at,
    )
    await UnitOfWork.of(db).record(completed)
