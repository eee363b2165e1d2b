"""Scoring, submitting once, ratings and events against the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from services.assessments import service
from services.assessments.models import (
    OUTBOX,
    AssessmentResult,
    Question,
    StudentRating,
    StudentResponse,
    TestAttempt,
)
from services.assessments.schemas import SubmitRequest
from services.kit.auth import Identity
from services.kit.errors import Conflict
from tests.services.assessments.conftest import AssessmentsApi, answers_for, free_text, mcq

pytestmark = pytest.mark.integration


async def test_multiple_choice_is_scored_exactly(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(*(mcq(n=i, correct=i % 4) for i in range(7)))
    _, student = assessments.caller()
    attempt = await assessments.start(student, rows)
    response = await assessments.submit(student, answers_for(rows, right=5), attempt_id=attempt)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["score"], result["max_score"], result["correct_count"]) == (5.0, 7.0, 5)
    assert result["percentage"] == pytest.approx(71.43)
    assert [r["correct"] for r in result["responses"]] == [True] * 5 + [False] * 2
    assert [r["question_id"] for r in result["responses"]] == [str(r["id"]) for r in rows]
    assert "correct_option" not in result["responses"][0]
    async with assessments.kit.db.session_scope() as db:
        ratings = [(await db.get(Question, r["id"])).rating for r in rows]  # type: ignore[union-attr]
    # Questions answered right lose rating (they were easier than thought), the others gain.
    assert all(r < 1400 for r in ratings[:5]) and all(r > 1400 for r in ratings[5:])
    prediction = result["prediction"]
    assert prediction["out_of"] == 360 and 0 <= prediction["neet_biology_score"] <= 360
    assert prediction["method"].startswith("elo-rating logistic projection over 90 questions")


async def test_free_text_is_scored_by_the_rubric(assessments: AssessmentsApi) -> None:
    [good, partial, poor] = await assessments.add(free_text(), free_text(), free_text())
    _, student = assessments.caller()
    answers = [
        {"question_id": good["id"], "text": "They make ATP by aerobic respiration on their cristae."},
        {"question_id": partial["id"], "text": "Mitochondria produce adenosine triphosphate."},
        {"question_id": poor["id"], "text": "Because they are green."},
    ]
    attempt = await assessments.start(student, [good, partial, poor])
    result = (await assessments.submit(student, answers, attempt_id=attempt)).json()
    scores = [r["score"] for r in result["responses"]]
    assert scores == [1.0, 0.5, 0.0]
    assert [r["correct"] for r in result["responses"]] == [True, True, False]
    assert "missing: aerobic respiration, double membrane" in result["responses"][1]["feedback"]
    assert result["score"] == 1.5


async def test_an_attempt_is_scored_once_and_a_replay_is_refused(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(), mcq())
    _, student = assessments.caller()
    attempt = await assessments.start(student, rows)
    first = await assessments.submit(student, answers_for(rows, right=2), attempt_id=attempt)
    replay = await assessments.submit(student, answers_for(rows, right=0), attempt_id=attempt)
    assert (first.status_code, replay.status_code) == (201, 409)
    assert replay.headers["content-type"] == "application/problem+json"
    # The refusal points at the stored result, and tells nothing about the replayed answers.
    assert replay.json()["result_id"] == first.json()["id"]
    assert "correct" not in replay.text and "responses" not in replay.text
    stored = await assessments.client.get(f"/assessments/results/{first.json()['id']}", headers=student)
    assert stored.json() == first.json()
    # Nor may a submitted attempt draw more questions.
    assert (await assessments.draw(student, attempt, difficulty=3)).status_code == 409
    assert await assessments.count(TestAttempt) == 1
    assert await assessments.count(AssessmentResult) == 1
    assert await assessments.count(StudentResponse) == 2
    async with assessments.kit.db.session_scope() as db:
        published = (await db.execute(select(OUTBOX).order_by(OUTBOX.c.event_type.desc()))).all()
    assert [r.event_type for r in published] == ["assessment.submitted", "assessment.completed"]
    assert all(r.payload["data"]["attempt_id"] == str(attempt) for r in published)
    assert published[1].payload["data"]["result_id"] == first.json()["id"]
    board = (await assessments.client.get("/leaderboard/genetics", headers=student)).json()
    assert board["me"]["points"] == 2.0
    metrics = (await assessments.client.get("/metrics")).text
    assert 'cerebrum_assessments_submitted_total{topic="genetics"}' in metrics


async def test_concurrent_submissions_of_one_attempt_count_once(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(), mcq(), mcq())
    _, student = assessments.caller()
    attempt = await assessments.start(student, rows)
    responses = await asyncio.gather(
        *(assessments.submit(student, answers_for(rows, right=3), attempt_id=attempt) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert len({r.json().get("id") or r.json()["result_id"] for r in responses}) == 1
    assert await assessments.count(AssessmentResult) == 1
    assert await assessments.count(OUTBOX) == 2


async def test_one_student_s_attempts_submitted_together_each_move_the_rating_once(
    assessments: AssessmentsApi,
) -> None:
    rows = await assessments.add(mcq(n=0), mcq(n=1), mcq(n=2))
    user_id, student = assessments.caller()
    attempts = [await assessments.start(student, rows) for _ in range(4)]
    responses = await asyncio.gather(
        *(assessments.submit(student, answers_for(rows, right=3), attempt_id=a) for a in attempts)
    )
    assert [r.status_code for r in responses] == [201] * 4
    # Each submission read the rating the one before it wrote: a chain, no update lost.
    chain = sorted((r.json()["rating_before"], r.json()["rating_after"]) for r in responses)
    assert all(after == chain[i + 1][0] for i, (_, after) in enumerate(chain[:-1]))
    async with assessments.kit.db.session_scope() as db:
        rating = await db.get(StudentRating, user_id)
    assert rating is not None and rating.attempts == 4
    assert round(rating.rating, 2) == chain[-1][1]


async def test_a_submission_racing_an_uncommitted_one_waits_and_is_refused(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(), mcq())
    ctx = assessments.app.state.assessments
    user_id, headers = assessments.caller()
    identity = Identity(user_id=user_id, role="student")
    attempt = await assessments.start(headers, rows)
    request = SubmitRequest.model_validate(
        {"attempt_id": attempt, "topic": "genetics", "answers": answers_for(rows, 2), "duration_seconds": 60}
    )

    async def second() -> object:
        async with assessments.kit.db.session_scope() as db:
            return await service.submit(db=db, ctx=ctx, identity=identity, request=request)

    async with assessments.kit.db.session_scope() as db:
        first = await service.submit(db=db, ctx=ctx, identity=identity, request=request)
        racing = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not racing.done()  # held at the attempt's row until the first commits
    with pytest.raises(Conflict) as refused:
        await racing
    assert refused.value.extensions["result_id"] == str(first.id)
    assert await assessments.count(AssessmentResult) == 1


async def test_difficulty_follows_the_students_rating_upwards(assessments: AssessmentsApi) -> None:
    await assessments.add(*(mcq(difficulty=d, n=i) for d in (2, 3, 4) for i in range(10)))
    _, student = assessments.caller()
    levels, predictions = [], []
    for _ in range(3):
        attempt = uuid.uuid4()
        drawn = (await assessments.draw(student, attempt, count=8)).json()
        assert drawn["difficulty_chosen_by"] == "rating"
        levels.append(drawn["difficulty"])
        # Every question of the factory has option 1 right: a perfect attempt.
        answers = [{"question_id": q["id"], "choice": 1} for q in drawn["questions"]]
        result = (await assessments.submit(student, answers, attempt_id=attempt)).json()
        assert result["score"] == 8.0
        predictions.append(result["prediction"]["neet_biology_score"])
    assert levels[0] == 2
    assert levels == sorted(levels) and levels[-1] > levels[0]
    assert predictions == sorted(predictions) and predictions[-1] > predictions[0]
    weak = assessments.caller()[1]
    assert (await assessments.draw(weak, uuid.uuid4())).json()["difficulty"] == 2


async def test_published_events_keep_their_contracts(assessments: AssessmentsApi) -> None:
    from services.contracts.events import parse

    rows = await assessments.add(mcq(), mcq())
    _, student = assessments.caller()
    await assessments.submit(student, answers_for(rows, right=1), attempt_id=await assessments.start(student, rows))
    async with assessments.kit.db.session_scope() as db:
        events = (await db.execute(select(OUTBOX))).all()
    assert {e.event_type for e in events} == {"assessment.submitted", "assessment.completed"}
    for event in events:
        parse(event.event_type, event.payload["data"])
