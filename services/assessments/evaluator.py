"""Free-text answer evaluation: the interface, and the offline rubric evaluator beside it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Evaluation:
    score: float  # the share of the question's marks earned, 0 … 1
    feedback: str


class AnswerEvaluator(Protocol):
    """Scores a free-text answer against the question and its rubric."""

    name: str

    async def evaluate(self, *, stem: str, rubric: Sequence[dict[str, Any]], answer: str) -> Evaluation: ...


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _mentions(answer: str, keyword: str) -> bool:
    phrase = _words(keyword)
    if not phrase:
        return False
    return re.search(rf"\b{re.escape(phrase)}(?:s|es)?\b", answer) is not None


class RubricEvaluator:
    """Awards each rubric point whose keywords (any one of them) the answer mentions; deterministic."""

    name = "rubric"

    async def evaluate(self, *, stem: str, rubric: Sequence[dict[str, Any]], answer: str) -> Evaluation:
        """Scores the answer by the weighted share of rubric points it covers."""
        text = _words(answer)
        total = sum(float(point.get("weight", 1.0)) for point in rubric)
        if total <= 0:
            return Evaluation(score=0.0, feedback="The question has no rubric to mark against")
        covered, missing = [], []
        earned = 0.0
        for point in rubric:
            if any(_mentions(text, keyword) for keyword in point.get("keywords", ())):
                earned += float(point.get("weight", 1.0))
                covered.append(str(point["point"]))
            else:
                missing.append(str(point["point"]))
        feedback = "; ".join(
            part
            for part in (
                f"covered: {', '.join(covered)}" if covered else "",
                f"missing: {', '.join(missing)}" if missing else "",
            )
            if part
        )
        return Evaluation(score=round(earned / total, 4), feedback=feedback[:500])
