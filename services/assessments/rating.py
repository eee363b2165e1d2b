"""Elo-style ratings: every answer is a game between a student and a question.

A student who beats questions of a rating gains, a question that beats students gains. Difficulty
1–5 maps to a question's starting rating; the next test's difficulty is the level whose rating is
nearest the student's own, where the student is expected to answer about half correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STUDENT_START = 1200.0
STUDENT_K = 24.0
QUESTION_K = 8.0
NEET_QUESTIONS = 90
NEET_CORRECT_MARKS = 4
NEET_WRONG_MARKS = -1
NEET_MAX = NEET_QUESTIONS * NEET_CORRECT_MARKS
NEET_QUESTION_RATING = 1400.0
PREDICTION_METHOD = (
    f"elo-rating logistic projection over {NEET_QUESTIONS} questions "
    f"(+{NEET_CORRECT_MARKS}/{NEET_WRONG_MARKS} marking, typical NEET question rated {NEET_QUESTION_RATING:g})"
)


def question_start_rating(difficulty: int) -> float:
    """The rating a new question of this difficulty starts with (1 → 1000 … 5 → 1800)."""
    return 800.0 + 200.0 * difficulty


def difficulty_for(rating: float) -> int:
    """The difficulty whose questions this student answers correctly about half the time."""
    return max(1, min(5, round((rating - 800.0) / 200.0)))


def expected(student: float, question: float) -> float:
    """The chance the student answers a question of that rating correctly."""
    return 1.0 / (1.0 + 10.0 ** ((question - student) / 400.0))


@dataclass(frozen=True)
class Game:
    question_rating: float
    outcome: float  # 0 wrong … 1 fully right


@dataclass(frozen=True)
class RatingUpdate:
    student_after: float
    question_deltas: tuple[float, ...]


def play(student: float, games: Sequence[Game]) -> RatingUpdate:
    """Plays an attempt's answers in order; returns the student's new rating and each question's change."""
    rating = student
    deltas = []
    for game in games:
        surprise = game.outcome - expected(rating, game.question_rating)
        rating += STUDENT_K * surprise
        deltas.append(-QUESTION_K * surprise)
    return RatingUpdate(student_after=rating, question_deltas=tuple(deltas))


def predict_neet_biology(rating: float) -> int:
    """Projects the student's rating onto a full NEET biology paper, every question attempted."""
    p = expected(rating, NEET_QUESTION_RATING)
    marks = NEET_QUESTIONS * (p * NEET_CORRECT_MARKS + (1 - p) * NEET_WRONG_MARKS)
    return int(round(max(0.0, min(float(NEET_MAX), marks))))
