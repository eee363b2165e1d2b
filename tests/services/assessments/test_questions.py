"""Drawing questions from the Redis pools, and drafting variants, on the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.assessments.models import Question
from tests.services.assessments.conftest import AssessmentsApi, free_text, mcq

pytestmark = pytest.mark.integration
ANSWER_FIELDS = {"correct_option", "rubric", "explanation", "rating"}


async def test_an_attempt_is_never_served_the_same_question_twice(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(*(mcq(difficulty=3, n=i) for i in range(29)), free_text(difficulty=3))
    _, student = assessments.caller()
    attempt = uuid.uuid4()
    served: list[str] = []
    for _ in range(3):
        response = await assessments.draw(student, attempt, difficulty=3, count=8)
        assert response.status_code == 200 and response.json()["source"] == "pool"
        for question in response.json()["questions"]:
            assert not ANSWER_FIELDS & question.keys()
            served.append(question["id"])
        assert "Because Beta" not in response.text and "adenosine" not in response.text
    # Two more draws at once: no question is handed to both.
    both = await asyncio.gather(*(assessments.draw(student, attempt, difficulty=3, count=8) for _ in range(2)))
    served += [q["id"] for r in both for q in r.json()["questions"]]
    assert len(served) == len(set(served)) == 30
    assert set(served) == {str(r["id"]) for r in rows}
    exhausted = await assessments.draw(student, attempt, difficulty=3, count=5)
    assert exhausted.json()["questions"] == []
    # Another attempt starts afresh; an attempt id another student started is not theirs to draw on.
    assert len((await assessments.draw(student, uuid.uuid4(), difficulty=3, count=30)).json()["questions"]) == 30
    _, other = assessments.caller()
    assert (await assessments.draw(other, attempt, difficulty=3, count=30)).status_code == 409


async def test_draws_keep_to_the_topic_and_difficulty_asked(assessments: AssessmentsApi) -> None:
    await assessments.add(mcq(difficulty=1), mcq(difficulty=5), mcq(topic="ecology", difficulty=1))
    _, student = assessments.caller()
    response = await assessments.draw(student, uuid.uuid4(), difficulty=1, count=10)
    body = response.json()
    assert body["difficulty"] == 1 and body["difficulty_chosen_by"] == "request"
    assert [(q["topic"], q["difficulty"]) for q in body["questions"]] == [("genetics", 1)]


@pytest.mark.parametrize(
    "params", [{"count": 0}, {"count": 101}, {"difficulty": 0}, {"difficulty": 6}, {"topic": "BAD TOPIC"}]
)
async def test_bad_draw_parameters_are_refused(assessments: AssessmentsApi, params: dict[str, object]) -> None:
    _, student = assessments.caller()
    response = await assessments.draw(student, uuid.uuid4(), **params)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    no_attempt = await assessments.client.get("/questions/random?topic=genetics", headers=student)
    assert no_attempt.status_code == 422


async def test_without_redis_questions_come_from_the_database(redis_down: AssessmentsApi) -> None:
    await redis_down.add(*(mcq(difficulty=2, n=i) for i in range(5)))
    _, student = redis_down.caller()
    attempt = uuid.uuid4()
    response = await redis_down.draw(student, attempt, difficulty=2, count=3)
    assert response.status_code == 200
    assert response.json()["source"] == "database"
    assert len(response.json()["questions"]) == 3
    assert not ANSWER_FIELDS & response.json()["questions"][0].keys()
    # The attempt's draws are remembered in the database: the next draw serves only the other two.
    rest = (await redis_down.draw(student, attempt, difficulty=2, count=3)).json()["questions"]
    assert len(rest) == 2 and not {q["id"] for q in rest} & {q["id"] for q in response.json()["questions"]}


async def test_variants_are_drafts_for_review_and_never_saved(assessments: AssessmentsApi) -> None:
    [row] = await assessments.add(
        {**mcq(), "stem": "Which of the following is known as the powerhouse of the cell?", "correct_option": 2}
    )
    _, admin = assessments.caller("admin")
    path = f"/questions/{row['id']}/variants"
    response = await assessments.client.post(path, json={"count": 3}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "draft" and body["generator"] == "template" and len(body["variants"]) == 3
    for variant in body["variants"]:
        assert sorted(variant["options"]) == sorted(row["options"])
        assert variant["options"][variant["correct_option"]] == "Gamma"
        assert variant["topic"] == "genetics" and variant["difficulty"] == 3
    assert len({(v["stem"], tuple(v["options"])) for v in body["variants"]}) == 3
    again = await assessments.client.post(path, json={"count": 3}, headers=admin)
    assert again.json() == body
    assert await assessments.count(Question) == 1
    missing = await assessments.client.post(f"/questions/{uuid.uuid4()}/variants", headers=admin)
    assert missing.status_code == 404


async def test_topics_are_listed_and_an_unknown_topic_is_a_404_problem(assessments: AssessmentsApi) -> None:
    await assessments.add(mcq(n=1), mcq(n=2), mcq(topic="ecology"))
    _, student = assessments.caller()
    listed = await assessments.client.get("/questions/topics", headers=student)
    assert listed.status_code == 200
    assert listed.json()["items"] == [{"topic": "ecology", "questions": 1}, {"topic": "genetics", "questions": 2}]
    unknown = await assessments.draw(student, uuid.uuid4(), topic="genetcs")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert "genetcs" in unknown.json()["detail"] and "/questions/topics" in unknown.json()["detail"]
    assert (await assessments.client.get("/questions/topics")).status_code == 401
