from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from services.assessments import service
from services.assessments.deps import ContextDep
from services.assessments.schemas import (
    TOPIC_PATTERN,
    LeaderboardOut,
    QuestionAdminOut,
    QuestionCreate,
    RandomQuestions,
    ResultOut,
    SubmitRequest,
    TopicsOut,
    VariantsOut,
    VariantsRequest,
)
from services.kit.deps import AdminUser, CurrentUser, SessionDep

router = APIRouter()


@router.get("/questions/topics", tags=["questions"])
async def topics(_identity: CurrentUser, db: SessionDep) -> TopicsOut:
    """Lists the topics tests are drawn from, with how many questions each holds."""
    return await service.list_topics(db=db)


@router.get("/questions/random", tags=["questions"])
async def random_questions(
    identity: CurrentUser,
    db: SessionDep,
    ctx: ContextDep,
    topic: Annotated[str, Query(pattern=TOPIC_PATTERN)],
    attempt_id: uuid.UUID,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
    difficulty: Annotated[int | None, Query(ge=1, le=5)] = None,
) -> RandomQuestions:
    """Draws questions this attempt has not been served; without a difficulty, the student's rating picks it."""
    return await service.draw_questions(
        db=db, ctx=ctx, identity=identity, attempt_id=attempt_id, topic=topic, count=count, difficulty=difficulty
    )


@router.post("/questions/create", status_code=status.HTTP_201_CREATED, tags=["questions"])
async def create_question(body: QuestionCreate, _admin: AdminUser, db: SessionDep, ctx: ContextDep) -> QuestionAdminOut:
    """Adds a live question (admins)."""
    return await service.create_question(db=db, ctx=ctx, request=body)


@router.post("/questions/{question_id}/variants", tags=["questions"])
async def question_variants(
    question_id: uuid.UUID, _admin: AdminUser, db: SessionDep, ctx: ContextDep, body: VariantsRequest | None = None
) -> VariantsOut:
    """Drafts variants of a question for review (admins); none is saved as a live question."""
    count = body.count if body else VariantsRequest().count
    return await service.draft_variants(db=db, ctx=ctx, question_id=question_id, count=count)


@router.post("/assessments/submit", status_code=status.HTTP_201_CREATED, tags=["assessments"])
async def submit(body: SubmitRequest, identity: CurrentUser, db: SessionDep, ctx: ContextDep) -> ResultOut:
    """Scores a test attempt: answers to the questions it drew, once; submitting it again is a 409."""
    return await service.submit(db=db, ctx=ctx, identity=identity, request=body)


@router.get("/assessments/results/{result_id}", tags=["assessments"])
async def get_result(result_id: uuid.UUID, identity: CurrentUser, db: SessionDep) -> ResultOut:
    """Gets a result: the student who took the test, or an admin."""
    return await service.get_result(db=db, identity=identity, result_id=result_id)


@router.get("/leaderboard/{category}", tags=["leaderboard"])
async def leaderboard(
    category: Annotated[str, Path(pattern=TOPIC_PATTERN, description='a topic, or "overall"')],
    identity: CurrentUser,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> LeaderboardOut:
    """Gets the top of a leaderboard and the caller's own rank."""
    return await service.leaderboard(ctx=ctx, identity=identity, category=category, limit=limit)
