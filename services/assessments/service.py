"""The assessments service's rules: drawing questions, scoring attempts once, ratings and leaderboards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter, histogram
from services.assessments import events, repository
from services.assessments.evaluator import AnswerEvaluator
from services.assessments.generator import QuestionDraft, VariantGenerator
from services.assessments.grading import grade, result_view
from services.assessments.leaderboard import Leaderboard
from services.assessments.models import AssessmentResult, Question, TestAttempt
from services.assessments.pool import QuestionPool, public_view
from services.assessments.rating import (
    PREDICTION_METHOD,
    STUDENT_START,
    Game,
    difficulty_for,
    play,
    predict_neet_biology,
    question_start_rating,
)
from services.assessments.schemas import (
    OVERALL,
    LeaderboardOut,
    QuestionAdminOut,
    QuestionCreate,
    RandomQuestions,
    ResultOut,
    SubmitRequest,
    TopicOut,
    TopicsOut,
    VariantDraft,
    VariantsOut,
)
from services.assessments.settings import AssessmentsSettings
from services.kit.auth import Identity
from services.kit.cache import REDIS_UNAVAILABLE
from services.kit.errors import Conflict, InvalidInput, NotFound
from services.kit.time import utcnow

POOL_FALLBACKS = counter(
    "cerebrum_question_pool_fallback_total", "Question draws served from the database because Redis was down."
)
DUPLICATE_SUBMITS = counter(
    "cerebrum_assessment_duplicate_submissions_total", "Submissions of an attempt already scored (answered once)."
)
LEADERBOARD_MISSES = counter(
    "cerebrum_leaderboard_update_failures_total", "Scored attempts whose leaderboard update failed (Redis down)."
)
SUBMITTED = counter("cerebrum_assessments_submitted_total", "Test attempts scored (each attempt once).", ("topic",))
SCORES = histogram(
    "cerebrum_assessment_score_percent",
    "Scores of submitted attempts, in percent.",
    ("topic",),
    buckets=(10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0),
)
log = structlog.get_logger("cerebrum.assessments")


@dataclass(frozen=True)
class AssessmentsContext:
    """What the assessment rules need besides the database session."""

    settings: AssessmentsSettings
    pool: QuestionPool
    leaderboard: Leaderboard
    evaluator: AnswerEvaluator
    generator: VariantGenerator


async def draw_questions(
    *,
    db: AsyncSession,
    ctx: AssessmentsContext,
    identity: Identity,
    attempt_id: uuid.UUID,
    topic: str,
    count: int,
    difficulty: int | None,
) -> RandomQuestions:
    """Draws questions the attempt has not seen, at the requested difficulty or the student's own.

    The first draw starts the attempt, owned by the caller; every draw is remembered, and the
    attempt's submission may answer only the questions drawn here.
    """
    now = utcnow()
    attempt = await repository.start_attempt(
        db=db, attempt_id=attempt_id, user_id=identity.user_id, topic=topic, at=now
    )
    _check_owner(attempt, identity)
    if attempt.submitted_at is not None:
        raise Conflict("This attempt was submitted already; start a new attempt", field="attempt_id")
    if attempt.topic != topic:
        raise Conflict(f"This attempt is a test of {attempt.topic!r}; start a new attempt for {topic!r}", field="topic")
    chosen_by = "request"
    if difficulty is None:
        rating = await repository.get_rating(db=db, user_id=identity.user_id)
        difficulty, chosen_by = difficulty_for(rating.rating if rating else STUDENT_START), "rating"
    source = "pool"
    try:
        questions = await ctx.pool.draw(
            db=db, topic=topic, difficulty=difficulty, count=count, user_id=identity.user_id, attempt_id=attempt_id
        )
    except REDIS_UNAVAILABLE as exc:
        POOL_FALLBACKS.inc()
        log.warning("question_pool_unavailable", reason=type(exc).__name__, topic=topic)
        rows = await repository.random_questions(
            db=db, topic=topic, difficulty=difficulty, count=count, not_in_attempt=attempt_id
        )
        questions, source = [public_view(q) for q in rows], "database"
    if not questions and not await repository.count_questions(db=db, topic=topic):
        # Only an empty draw pays for this query: a misspelt topic says so instead of "no questions".
        raise NotFound(f"No topic called {topic!r}: GET /api/questions/topics lists them")
    new = await repository.record_drawn(db=db, attempt_id=attempt_id, question_ids=[q.id for q in questions], at=now)
    return RandomQuestions(
        attempt_id=attempt_id,
        topic=topic,
        difficulty=difficulty,
        difficulty_chosen_by=chosen_by,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        questions=[q for q in questions if q.id in new],
    )


async def list_topics(*, db: AsyncSession) -> TopicsOut:
    """Lists the topics a test can be drawn from, with how many questions each holds."""
    return TopicsOut(items=[TopicOut(topic=t, questions=n) for t, n in await repository.topic_counts(db=db)])


def _check_owner(attempt: TestAttempt, identity: Identity) -> None:
    """Refuses an attempt another student started."""
    if attempt.user_id != identity.user_id:
        raise Conflict("This attempt id belongs to another student's test; start a new attempt", field="attempt_id")


async def _already_submitted(*, db: AsyncSession, attempt_id: uuid.UUID) -> Conflict:
    """The refusal of a second submission, pointing at the first one's result."""
    DUPLICATE_SUBMITS.inc()
    result = await repository.get_result_for_attempt(db=db, attempt_id=attempt_id)
    extensions = {"result_id": str(result.id)} if result is not None else {}
    return Conflict(
        "This attempt was submitted already: each attempt is scored once (GET its result instead)",
        field="attempt_id",
        **extensions,
    )


async def _answered_questions(
    *, db: AsyncSession, identity: Identity, request: SubmitRequest
) -> dict[uuid.UUID, Question]:
    """The questions answered, once the attempt is the caller's, open and of this topic, and drew them all."""
    answered = [a.question_id for a in request.answers]
    attempt, questions = await repository.attempt_with_drawn(
        db=db, attempt_id=request.attempt_id, question_ids=answered
    )
    if attempt is None:
        raise InvalidInput(
            "This attempt drew no questions: draw them with GET /api/questions/random and this attempt_id first",
            field="attempt_id",
        )
    _check_owner(attempt, identity)
    if attempt.submitted_at is not None:
        raise await _already_submitted(db=db, attempt_id=attempt.id)
    if request.topic != attempt.topic:
        raise InvalidInput(f"This attempt is a test of {attempt.topic!r}, not {request.topic!r}", field="topic")
    not_drawn = [str(q) for q in answered if q not in questions]
    if not_drawn:
        raise InvalidInput(
            f"Not drawn in this attempt: {', '.join(not_drawn)}; answer only the questions it drew",
            question_ids=not_drawn,
        )
    return questions


async def submit(*, db: AsyncSession, ctx: AssessmentsContext, identity: Identity, request: SubmitRequest) -> ResultOut:
    """Scores an attempt once: only the questions it drew, and never a second time (409)."""
    questions = await _answered_questions(db=db, identity=identity, request=request)
    graded = await grade(request=request, questions=questions, evaluator=ctx.evaluator)
    now = utcnow()
    submitted = await repository.mark_submitted(
        db=db,
        attempt_id=request.attempt_id,
        question_count=len(request.answers),
        duration_seconds=request.duration_seconds,
        at=now,
    )
    if not submitted:
        raise await _already_submitted(db=db, attempt_id=request.attempt_id)

    rating_before, attempts = await repository.lock_rating(db=db, user_id=identity.user_id, start=STUDENT_START)
    games = [Game(questions[r.question_id].rating, r.score) for r in graded.responses]
    update = play(rating_before, games)
    await repository.set_rating(
        db=db, user_id=identity.user_id, rating=update.student_after, attempts=attempts + 1, at=now
    )
    await repository.shift_question_ratings(
        db=db, deltas={r.question_id: d for r, d in zip(graded.responses, update.question_deltas, strict=True)}
    )
    for response in graded.responses:
        response.attempt_id = request.attempt_id
    result = AssessmentResult(
        id=uuid.uuid4(),
        attempt_id=request.attempt_id,
        user_id=identity.user_id,
        topic=request.topic,
        score=graded.score,
        max_score=graded.max_score,
        percentage=round(100 * graded.score / graded.max_score, 2),
        correct_count=graded.correct_count,
        question_count=len(graded.responses),
        rating_before=round(rating_before, 2),
        rating_after=round(update.student_after, 2),
        predicted_neet_score=predict_neet_biology(update.student_after),
        prediction_method=PREDICTION_METHOD,
        created_at=now,
    )
    await repository.add_graded_attempt(db=db, responses=graded.responses, result=result)
    await events.announce_scored_attempt(db, result=result, duration_seconds=request.duration_seconds)
    SUBMITTED.labels(result.topic).inc()
    SCORES.labels(result.topic).observe(result.percentage)
    await _update_leaderboards(db=db, ctx=ctx, result=result)
    return result_view(result, request.duration_seconds, graded.responses)


async def _update_leaderboards(*, db: AsyncSession, ctx: AssessmentsContext, result: AssessmentResult) -> None:
    """Writes the student's recomputed totals; a Redis outage must not fail a submission.

    Written last, just before the request commits: should that commit fail, the board runs ahead
    by this attempt (``LT`` never moves a student down) — a rare overstatement we accept rather
    than a second transaction.
    """
    in_topic, overall = await repository.total_points(db=db, user_id=result.user_id, topic=result.topic)
    totals = {result.topic: in_topic, OVERALL: overall}
    try:
        await ctx.leaderboard.record(user_id=result.user_id, totals=totals, achieved_at=result.created_at)
    except REDIS_UNAVAILABLE as exc:
        LEADERBOARD_MISSES.inc()
        log.warning("leaderboard_not_updated", result_id=str(result.id), reason=type(exc).__name__)


async def get_result(*, db: AsyncSession, identity: Identity, result_id: uuid.UUID) -> ResultOut:
    """Gets a result: the student who took the test, or an admin."""
    result = await repository.get_result(db=db, result_id=result_id)
    if result is None:
        raise NotFound("No such result")
    identity.require_self_or_admin(result.user_id)
    attempt = await repository.get_attempt(db=db, attempt_id=result.attempt_id)
    assert attempt is not None and attempt.duration_seconds is not None  # submitted with its result
    responses = await repository.get_responses(db=db, attempt_id=result.attempt_id)
    return result_view(result, attempt.duration_seconds, responses)


def _admin_view(question: Question) -> QuestionAdminOut:
    return QuestionAdminOut.model_validate(question, from_attributes=True)


async def create_question(*, db: AsyncSession, ctx: AssessmentsContext, request: QuestionCreate) -> QuestionAdminOut:
    """Adds a live question and puts it into its pool."""
    question = Question(
        id=uuid.uuid4(),
        topic=request.topic,
        difficulty=request.difficulty,
        kind=request.kind,
        stem=request.stem,
        options=request.options,
        correct_option=request.correct_option,
        rubric=[p.model_dump() for p in request.rubric] if request.rubric else None,
        explanation=request.explanation,
        rating=question_start_rating(request.difficulty),
        created_at=utcnow(),
    )
    await repository.add_question(db=db, question=question)
    try:
        await ctx.pool.add(question)
    except REDIS_UNAVAILABLE:
        log.warning("question_not_pooled_yet", question_id=str(question.id))
    return _admin_view(question)


async def draft_variants(
    *, db: AsyncSession, ctx: AssessmentsContext, question_id: uuid.UUID, count: int
) -> VariantsOut:
    """Drafts variants of a question for an admin to review; nothing is saved."""
    question = await repository.get_question(db=db, question_id=question_id)
    if question is None:
        raise NotFound("No such question")
    source = QuestionDraft(
        topic=question.topic,
        difficulty=question.difficulty,
        kind=question.kind,
        stem=question.stem,
        options=question.options,
        correct_option=question.correct_option,
        rubric=question.rubric,
        explanation=question.explanation,
    )
    drafts = await ctx.generator.variants(question=source, count=count, seed=str(question.id))
    return VariantsOut(
        source_question_id=question.id,
        generator=ctx.generator.name,
        variants=[VariantDraft.model_validate(d, from_attributes=True) for d in drafts],
    )


async def leaderboard(*, ctx: AssessmentsContext, identity: Identity, category: str, limit: int) -> LeaderboardOut:
    """Gets a leaderboard's top and the caller's rank."""
    return await ctx.leaderboard.standings(category=category, limit=limit, user_id=identity.user_id)
