"""Scoring an attempt: multiple choice exactly, free text through the evaluator; one mark per question."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.assessments.evaluator import AnswerEvaluator, Evaluation
from services.assessments.models import AssessmentResult, Question, StudentResponse
from services.assessments.rating import NEET_MAX, difficulty_for
from services.assessments.schemas import AnswerIn, Prediction, ResponseOut, ResultOut, SubmitRequest
from services.kit.errors import InvalidInput
from services.kit.time import as_utc

# A free-text answer counts as correct once it earns at least half its rubric's weight.
PASS_SHARE = 0.5


@dataclass(frozen=True)
class Graded:
    responses: list[StudentResponse]
    score: float
    max_score: float
    correct_count: int


def _check(answer: AnswerIn, question: Question, topic: str) -> None:
    ref = str(question.id)
    if question.topic != topic:
        raise InvalidInput(f"Question {ref} is from topic {question.topic!r}, not {topic!r}", question_id=ref)
    if question.kind == "mcq":
        if answer.choice is None:
            raise InvalidInput(f"Question {ref} is multiple choice: send choice", question_id=ref)
        if not 0 <= answer.choice < len(question.options or ()):
            raise InvalidInput(f"Question {ref} has no option {answer.choice}", question_id=ref)
    elif answer.text is None:
        raise InvalidInput(f"Question {ref} is free text: send text", question_id=ref)


async def grade(*, request: SubmitRequest, questions: dict[uuid.UUID, Question], evaluator: AnswerEvaluator) -> Graded:
    """Checks every answer fits its question, then scores them all."""
    unknown = [str(a.question_id) for a in request.answers if a.question_id not in questions]
    if unknown:
        raise InvalidInput(f"No such question: {', '.join(unknown)}", question_ids=unknown)
    for answer in request.answers:
        _check(answer, questions[answer.question_id], request.topic)
    free_text = [a for a in request.answers if questions[a.question_id].kind != "mcq"]
    evaluations: dict[uuid.UUID, Evaluation] = dict(
        zip(
            [a.question_id for a in free_text],
            await asyncio.gather(
                *(
                    evaluator.evaluate(
                        stem=questions[a.question_id].stem,
                        rubric=questions[a.question_id].rubric or [],
                        answer=a.text or "",
                    )
                    for a in free_text
                )
            ),
            strict=True,
        )
    )
    responses = []
    for position, answer in enumerate(request.answers):
        question = questions[answer.question_id]
        if question.kind == "mcq":
            score, correct, feedback = float(answer.choice == question.correct_option), None, None
        else:
            evaluation = evaluations[answer.question_id]
            score, correct, feedback = evaluation.score, evaluation.score >= PASS_SHARE, evaluation.feedback
        responses.append(
            StudentResponse(
                id=uuid.uuid4(),
                question_id=question.id,
                position=position,
                choice=answer.choice,
                text=answer.text,
                score=score,
                correct=bool(score == 1.0) if correct is None else correct,
                feedback=feedback,
            )
        )
    return Graded(
        responses=responses,
        score=round(sum(r.score for r in responses), 4),
        max_score=float(len(responses)),
        correct_count=sum(r.correct for r in responses),
    )


def result_view(result: AssessmentResult, duration_seconds: int, responses: Sequence[StudentResponse]) -> ResultOut:
    """The result as its student sees it: scores per answer, never the correct options."""
    return ResultOut(
        id=result.id,
        attempt_id=result.attempt_id,
        user_id=result.user_id,
        topic=result.topic,
        score=result.score,
        max_score=result.max_score,
        percentage=result.percentage,
        correct_count=result.correct_count,
        question_count=result.question_count,
        duration_seconds=duration_seconds,
        rating_before=result.rating_before,
        rating_after=result.rating_after,
        recommended_difficulty=difficulty_for(result.rating_after),
        prediction=Prediction(
            neet_biology_score=result.predicted_neet_score, out_of=NEET_MAX, method=result.prediction_method
        ),
        responses=[ResponseOut.model_validate(r, from_attributes=True) for r in responses],
        created_at=as_utc(result.created_at),
    )
