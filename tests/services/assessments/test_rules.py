"""The assessment rules on their own: rubric marking, variant drafts, ratings and leaderboard scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from services.assessments.ai import OpenAIEvaluator
from services.assessments.app import build_context
from services.assessments.evaluator import RubricEvaluator
from services.assessments.generator import QuestionDraft, TemplateVariantGenerator
from services.assessments.leaderboard import decode, encode
from services.assessments.rating import Game, difficulty_for, play, predict_neet_biology, question_start_rating
from services.assessments.schemas import QuestionCreate
from services.assessments.settings import AssessmentsSettings
from services.kit.app import ServiceKit
from tests.apps import embedded
from tests.services.assessments.conftest import RUBRIC


async def test_the_rubric_evaluator_awards_weighted_points_for_keywords() -> None:
    evaluator = RubricEvaluator()
    full = await evaluator.evaluate(stem="", rubric=RUBRIC, answer="ATPs, via the Krebs cycle, on CRISTAE.")
    assert full.score == 1.0 and "missing" not in full.feedback
    half = await evaluator.evaluate(stem="", rubric=RUBRIC, answer="It makes adenosine triphosphate")
    assert half.score == 0.5
    assert (await evaluator.evaluate(stem="", rubric=RUBRIC, answer="catpower")).score == 0.0  # whole words only
    assert (await evaluator.evaluate(stem="", rubric=[], answer="anything")).score == 0.0


async def test_template_variants_keep_the_answer_and_repeat_for_a_seed() -> None:
    question = QuestionDraft(
        topic="genetics",
        difficulty=2,
        kind="mcq",
        stem="Which of the following is known as the law of segregation?",
        options=["A", "B", "C", "D"],
        correct_option=1,
    )
    generator = TemplateVariantGenerator()
    drafts = await generator.variants(question=question, count=4, seed="q1")
    assert len(drafts) == 4
    assert all(d.options and d.correct_option is not None and d.options[d.correct_option] == "B" for d in drafts)
    assert drafts == await generator.variants(question=question, count=4, seed="q1")
    assert any(d.stem != question.stem for d in drafts)


def test_ratings_rise_with_strong_answers_and_raise_the_difficulty() -> None:
    start = 1200.0
    strong = play(start, [Game(question_start_rating(2), 1.0)] * 10)
    weak = play(start, [Game(question_start_rating(2), 0.0)] * 10)
    assert strong.student_after > start > weak.student_after
    assert all(d < 0 for d in strong.question_deltas) and all(d > 0 for d in weak.question_deltas)
    assert difficulty_for(start) == 2 < difficulty_for(strong.student_after)
    assert difficulty_for(weak.student_after) == 1 and difficulty_for(5000) == 5
    assert 0 <= predict_neet_biology(weak.student_after) < predict_neet_biology(strong.student_after) <= 360


def test_leaderboard_scores_rank_points_then_the_earlier_achievement() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # Smaller ranks first: more points, then earlier.
    assert encode(10.5, t0 + timedelta(days=300)) < encode(10.4, t0) < encode(10.4, t0 + timedelta(seconds=1))
    assert decode(encode(1234.5, t0)) == 1234.5


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "mcq", "options": ["A", "a"], "correct_option": 0},
        {"kind": "mcq", "options": ["A", "B"], "correct_option": 1, "rubric": [{"point": "p", "keywords": ["k"]}]},
        {"kind": "free_text", "rubric": []},
        {"kind": "free_text", "rubric": [{"point": "p", "keywords": ["k"]}], "options": ["A", "B"]},
        {"kind": "mcq", "options": ["A", "B"], "correct_option": 0, "topic": "overall"},
    ],
)
def test_questions_must_fit_their_kind(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        QuestionCreate.model_validate({"topic": "genetics", "difficulty": 1, "stem": "A question?", **body})


def test_an_evaluator_url_switches_to_the_ai_adapter(tmp_path: Path) -> None:
    settings = AssessmentsSettings(
        **embedded(tmp_path), evaluator_url="http://127.0.0.1:9/v1", evaluator_api_key=SecretStr("k")
    )
    ctx, on_shutdown = build_context(ServiceKit.build(settings), settings)
    assert isinstance(ctx.evaluator, OpenAIEvaluator) and ctx.generator.name == "openai" and len(on_shutdown) == 1
    plain = AssessmentsSettings(**embedded(tmp_path))
    offline, nothing_to_close = build_context(ServiceKit.build(plain), plain)
    assert (offline.evaluator.name, offline.generator.name, nothing_to_close) == ("rubric", "template", [])
