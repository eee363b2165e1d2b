"""A test attempt answers only the questions it drew, once; a course's lesson files open only to its students.

Through the gateway, as a student's client calls it: answering questions an attempt never drew
used to say which answers were right (and so climb the leaderboard), and any signed-in student
could download every paid course's files.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.security.world import Academy, Account, expect

TOPIC = "genetics"
PROBLEM = "application/problem+json"


async def draw(a: Academy, account: Account, attempt: str, count: int) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"topic": TOPIC, "count": count, "attempt_id": attempt}
    questions: list[dict[str, Any]] = expect(
        await a.http.get("/api/questions/random", params=params, headers=account.headers), 200
    )["questions"]
    return questions


def answer(question: dict[str, Any]) -> dict[str, Any]:
    if question["kind"] == "mcq":
        return {"question_id": question["id"], "choice": 0}
    return {"question_id": question["id"], "text": "Alleles segregate"}


async def submit(a: Academy, account: Account, attempt: str, answers: list[dict[str, Any]]) -> Any:
    body = {"attempt_id": attempt, "topic": TOPIC, "answers": answers, "duration_seconds": 60}
    return await a.http.post("/api/assessments/submit", json=body, headers=account.headers)


async def points(a: Academy, account: Account) -> float:
    board = expect(await a.http.get(f"/api/leaderboard/{TOPIC}", headers=account.headers), 200)
    return float(board["me"]["points"]) if board["me"] else 0.0


async def test_answers_to_questions_the_attempt_did_not_draw_are_refused(academy: Academy) -> None:
    a, alice, bob = academy, academy.accounts["alice"], academy.accounts["bob"]
    attempt = str(uuid.uuid4())
    drawn = await draw(a, alice, attempt, count=3)
    elsewhere = await draw(a, bob, str(uuid.uuid4()), count=10)
    foreign = next(q for q in elsewhere if q["id"] not in {d["id"] for d in drawn})
    before = await points(a, alice)

    refused = await submit(a, alice, attempt, [*map(answer, drawn), answer(foreign)])
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["question_ids"] == [foreign["id"]]
    assert "correct" not in refused.text, "a refusal tells nothing about the answers"
    unknown = await submit(a, alice, str(uuid.uuid4()), [answer(foreign)])  # an attempt that drew nothing
    assert unknown.status_code == 422 and "correct" not in unknown.text
    assert await points(a, alice) == before

    # The attempt stays open for its own questions, and its result is where correctness is told.
    scored = await submit(a, alice, attempt, [answer(q) for q in drawn])
    assert scored.status_code == 201, scored.text
    result = scored.json()
    assert [r["question_id"] for r in result["responses"]] == [q["id"] for q in drawn]
    assert all(isinstance(r["correct"], bool) for r in result["responses"])
    assert await points(a, alice) == before + result["score"]


async def test_a_submitted_attempt_cannot_be_replayed(academy: Academy) -> None:
    a, bob = academy, academy.accounts["bob"]
    attempt = str(uuid.uuid4())
    drawn = await draw(a, bob, attempt, count=2)
    first = await submit(a, bob, attempt, [answer(q) for q in drawn])
    assert first.status_code == 201, first.text
    after_first = await points(a, bob)

    # Replaying with other answers (say, the ones the result marked wrong) scores nothing, tells nothing.
    other_answers = [{"question_id": q["id"], "choice": 1} if q["kind"] == "mcq" else answer(q) for q in drawn]
    replay = await submit(a, bob, attempt, other_answers)
    assert replay.status_code == 409 and replay.headers["content-type"] == PROBLEM
    assert replay.json()["result_id"] == first.json()["id"]
    assert "correct" not in replay.text and "responses" not in replay.text
    assert (
        await a.http.get("/api/questions/random", params={"topic": TOPIC, "attempt_id": attempt}, headers=bob.headers)
    ).status_code == 409, "a submitted attempt draws no more"
    assert await points(a, bob) == after_first
    stored = expect(await a.http.get(f"/api/assessments/results/{first.json()['id']}", headers=bob.headers), 200)
    assert stored == first.json()


async def test_lesson_files_open_only_to_admins_and_students_with_a_confirmed_enrolment(academy: Academy) -> None:
    a = academy
    course_id = a.records["alice"].course_id
    path = f"/api/courses/{course_id}/lessons/{a.lesson_ids[course_id][0]}/files/{a.file_id}"
    await a.delivered()  # alice's confirmation has reached courses

    enrolled = await a.http.get(path, headers=a.accounts["alice"].headers)
    assert enrolled.status_code == 200 and enrolled.content.startswith(b"%PDF")
    assert (await a.http.get(path, headers=a.accounts["admin"].headers)).status_code == 200

    stranger = await a.register(f"stranger{a.serial()}")
    refused = await a.http.get(path, headers=stranger.headers)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert b"%PDF" not in refused.content

    # Enrolled but not paid: the files open when the enrolment is confirmed, not before.
    await a.enrol(stranger, course_id)
    await a.delivered()
    assert (await a.http.get(path, headers=stranger.headers)).status_code == 403
