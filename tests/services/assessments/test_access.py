"""Who may do what, and bad input refused with problem+json and nothing stored."""

from __future__ import annotations

import uuid

import pytest

from services.assessments.models import OUTBOX, AssessmentResult, Question, TestAttempt
from tests.services.assessments.conftest import AssessmentsApi, answers_for, mcq

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
GOOD_MCQ = {
    "topic": "cell-biology",
    "difficulty": 2,
    "kind": "mcq",
    "stem": "Which organelle is the site of protein synthesis?",
    "options": ["Ribosome", "Lysosome", "Centriole"],
    "correct_option": 0,
}


async def test_admin_routes_refuse_students_and_anonymous_callers(assessments: AssessmentsApi) -> None:
    [question] = await assessments.add(mcq())
    _, student = assessments.caller("student")
    routes = [("/questions/create", GOOD_MCQ), (f"/questions/{question['id']}/variants", {"count": 2})]
    for path, body in routes:
        anonymous = await assessments.client.post(path, json=body)
        assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
        refused = await assessments.client.post(path, json=body, headers=student)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert await assessments.count(Question) == 1
    for path in ("/questions/random?topic=genetics&attempt_id=" + str(uuid.uuid4()), "/leaderboard/overall"):
        assert (await assessments.client.get(path)).status_code == 401


async def test_an_admin_creates_questions_that_students_are_then_served(assessments: AssessmentsApi) -> None:
    _, admin = assessments.caller("admin")
    created = await assessments.client.post("/questions/create", json=GOOD_MCQ, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["correct_option"] == 0 and created.json()["rating"] == 1200
    _, student = assessments.caller()
    drawn = await assessments.draw(student, uuid.uuid4(), topic="cell-biology", difficulty=2)
    assert [q["id"] for q in drawn.json()["questions"]] == [created.json()["id"]]
    # A second question lands in the live pool straight away, before it is next refreshed.
    second = await assessments.client.post("/questions/create", json={**GOOD_MCQ, "stem": "Another?"}, headers=admin)
    again = await assessments.draw(student, uuid.uuid4(), topic="cell-biology", difficulty=2)
    assert {q["id"] for q in again.json()["questions"]} == {created.json()["id"], second.json()["id"]}


@pytest.mark.parametrize(
    ("change", "field_hint"),
    [
        ({"options": ["Only one"]}, "at least 2 options"),
        ({"correct_option": 3}, "correct_option"),
        ({"correct_option": None}, "correct_option"),
        ({"kind": "free_text", "options": None, "correct_option": None}, "rubric"),
        ({"difficulty": 6}, "difficulty"),
        ({"topic": "Not a topic!"}, "topic"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_questions_are_refused_and_nothing_is_stored(
    assessments: AssessmentsApi, change: dict[str, object], field_hint: str
) -> None:
    _, admin = assessments.caller("admin")
    response = await assessments.client.post("/questions/create", json={**GOOD_MCQ, **change}, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert field_hint in response.text
    assert await assessments.count(Question) == 0


async def test_a_free_text_question_needs_a_rubric_and_is_kept_with_it(assessments: AssessmentsApi) -> None:
    _, admin = assessments.caller("admin")
    body = {
        "topic": "cell-biology",
        "difficulty": 3,
        "kind": "free_text",
        "stem": "Explain the role of the nucleolus.",
        "rubric": [{"point": "makes rRNA", "keywords": ["rrna", "ribosomal rna"]}],
    }
    response = await assessments.client.post("/questions/create", json=body, headers=admin)
    assert response.status_code == 201
    assert response.json()["rubric"] == [{"point": "makes rRNA", "keywords": ["rrna", "ribosomal rna"], "weight": 1.0}]


async def test_invalid_submissions_change_nothing(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(), mcq())
    other_topic = (await assessments.add(mcq(topic="ecology")))[0]
    _, student = assessments.caller()
    attempt = await assessments.start(student, rows)
    good = answers_for(rows, right=2)
    bad_bodies = [
        [{**good[0], "text": "also text"}],  # a choice and a text
        [good[0], good[0]],  # the same question twice
        [{"question_id": uuid.uuid4(), "choice": 1}],  # no such question
        [{"question_id": rows[0]["id"], "text": "free text for an MCQ"}],
        [{"question_id": other_topic["id"], "choice": 1}],  # another topic's question
        [],
    ]
    for answers in bad_bodies:
        response = await assessments.submit(student, answers, attempt_id=attempt)
        assert response.status_code == 422, (answers, response.text)
        assert response.headers["content-type"] == PROBLEM
    out_of_range = await assessments.submit(student, [{"question_id": rows[0]["id"], "choice": 9}], attempt)
    assert out_of_range.status_code == 422
    wrong_topic = await assessments.submit(student, good, attempt_id=attempt, topic="ecology")
    assert wrong_topic.status_code == 422
    never_drawn = await assessments.submit(student, good)  # an attempt that drew nothing
    assert never_drawn.status_code == 422 and "draw" in never_drawn.json()["detail"]
    assert await assessments.count(AssessmentResult) == 0
    assert await assessments.count(OUTBOX) == 0
    # The attempt is still open: its good answers are scored.
    assert (await assessments.submit(student, good, attempt_id=attempt)).status_code == 201


async def test_a_student_reads_only_their_own_results_and_an_admin_reads_any(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq(), mcq())
    _, asha = assessments.caller()
    _, ravi = assessments.caller()
    _, admin = assessments.caller("admin")
    attempt = await assessments.start(asha, rows)
    result = (await assessments.submit(asha, answers_for(rows, right=1), attempt_id=attempt)).json()
    path = f"/assessments/results/{result['id']}"
    assert (await assessments.client.get(path, headers=asha)).json() == result
    refused = await assessments.client.get(path, headers=ravi)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert (await assessments.client.get(path, headers=admin)).status_code == 200
    missing = await assessments.client.get(f"/assessments/results/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404


async def test_an_attempt_id_of_another_student_is_refused(assessments: AssessmentsApi) -> None:
    rows = await assessments.add(mcq())
    _, asha = assessments.caller()
    _, ravi = assessments.caller()
    attempt = await assessments.start(asha, rows)
    drawing = await assessments.draw(ravi, attempt, difficulty=3)
    assert drawing.status_code == 409 and drawing.headers["content-type"] == PROBLEM
    clash = await assessments.submit(ravi, answers_for(rows, 1), attempt_id=attempt)
    assert clash.status_code == 409 and clash.headers["content-type"] == PROBLEM
    assert (await assessments.submit(asha, answers_for(rows, 1), attempt_id=attempt)).status_code == 201
    assert await assessments.count(TestAttempt) == 1


async def test_a_question_of_the_topic_the_attempt_did_not_draw_is_refused(assessments: AssessmentsApi) -> None:
    drawn = await assessments.add(mcq(difficulty=3))
    (undrawn,) = await assessments.add(mcq(difficulty=5, n=1))  # the same topic, never drawn by this attempt
    _, student = assessments.caller()
    attempt = await assessments.start(student, drawn)
    answers = answers_for(drawn, right=1) + [{"question_id": undrawn["id"], "choice": 1}]
    refused = await assessments.submit(student, answers, attempt_id=attempt)
    assert refused.status_code == 422 and refused.json()["question_ids"] == [str(undrawn["id"])]
    assert await assessments.count(AssessmentResult) == 0
    assert (await assessments.submit(student, answers_for(drawn, right=1), attempt_id=attempt)).status_code == 201
