"""The question bank generator fills PostgreSQL with 50,000 questions (the time is measured, not asserted)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.assessments.bank import generate_bank
from services.assessments.models import Question
from tests.services.assessments.conftest import AssessmentsApi

pytestmark = pytest.mark.integration


async def test_the_bank_generator_inserts_50000_questions(assessments: AssessmentsApi) -> None:
    async with assessments.kit.db.session_scope() as db:
        assert await generate_bank(db=db, count=50_000, seed=7) == 50_000
    async with assessments.kit.db.session_scope() as db:
        assert (await db.execute(select(func.count()).select_from(Question))).scalar_one() == 50_000
        spread = (await db.execute(select(Question.topic, Question.difficulty).distinct())).all()
        sample = (await db.execute(select(Question).limit(1))).scalar_one()
    assert len({topic for topic, _ in spread}) == 8
    assert {difficulty for _, difficulty in spread} == {1, 2, 3, 4, 5}
    assert sample.options is not None and len(sample.options) == 4
    assert sample.correct_option is not None and sample.explanation is not None
    answer = sample.options[sample.correct_option].split(" – ")[0]
    assert answer.lower() in sample.explanation.lower()
