"""The assessments API as `cerebrum up` runs it with no servers: SQLite and the in-process Redis stand-in."""

from __future__ import annotations

import asyncio
import uuid

from services.assessments.bank import seed_demo_questions
from services.assessments.models import OUTBOX, AssessmentResult
from tests.services.assessments.conftest import AssessmentsApi


async def test_the_main_flow_works_embedded(embedded_assessments: AssessmentsApi) -> None:
    api = embedded_assessments
    async with api.kit.db.session_scope() as db:
        seeded = await seed_demo_questions(db=db)
    async with api.kit.db.session_scope() as db:
        assert await seed_demo_questions(db=db) == 0  # only once
    assert 290 <= seeded <= 320
    student_id, student = api.caller()
    _, admin = api.caller("admin")
    attempt = uuid.uuid4()
    first = (await api.draw(student, attempt, topic="cell-biology", count=10)).json()
    second = (await api.draw(student, attempt, topic="cell-biology", count=10)).json()
    assert first["source"] == "pool" and first["difficulty_chosen_by"] == "rating"
    served = [q["id"] for q in first["questions"] + second["questions"]]
    assert len(served) == len(set(served)) > 0
    answers = [
        {"question_id": q["id"], "choice": 0} if q["kind"] == "mcq" else {"question_id": q["id"], "text": "ATP"}
        for q in first["questions"] + second["questions"]
    ]
    submits = await asyncio.gather(*(api.submit(student, answers, attempt, "cell-biology") for _ in range(2)))
    assert sorted(r.status_code for r in submits) == [201, 409], [r.text for r in submits]
    [result] = [r.json() for r in submits if r.status_code == 201]
    assert result["question_count"] == len(answers)
    assert (await api.client.get(f"/assessments/results/{result['id']}", headers=admin)).json() == result
    board = (await api.client.get("/leaderboard/cell-biology", headers=student)).json()
    assert board["me"]["user_id"] == str(student_id)
    assert await api.count(AssessmentResult) == 1 and await api.count(OUTBOX) == 2
    ready = await api.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    assert (await api.client.get("/health")).json()["service"] == "assessments"
