"""Question variants for an admin to review: the interface, and the offline template generator."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any, Protocol


@dataclass(frozen=True)
class QuestionDraft:
    topic: str
    difficulty: int
    kind: str
    stem: str
    options: list[str] | None = None
    correct_option: int | None = None
    rubric: list[dict[str, Any]] | None = None
    explanation: str | None = None


class VariantGenerator(Protocol):
    """Drafts new questions that test the same idea as an existing one."""

    name: str

    async def variants(self, *, question: QuestionDraft, count: int, seed: str) -> list[QuestionDraft]: ...


# Phrasings that keep a biology question's meaning.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "which of the following": ("which one of the following", "which of these", "identify which of the following"),
    "is known as": ("is called", "is termed", "is referred to as"),
    "is called": ("is known as", "is termed"),
    "responsible for": ("involved in", "in charge of"),
    "site of": ("location of", "place of"),
    "explain": ("describe", "account for"),
    "describe": ("explain", "outline"),
    "correct": ("true", "right"),
    "incorrect": ("false", "wrong"),
    "organism": ("living being",),
    "produces": ("makes", "generates"),
    "found in": ("present in", "located in"),
}
_PATTERN = re.compile("|".join(rf"\b{re.escape(k)}\b" for k in sorted(SYNONYMS, key=len, reverse=True)), re.I)


def _rephrase(stem: str, rng: random.Random) -> str:
    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        choice = rng.choice(SYNONYMS[found.lower()])
        return choice[0].upper() + choice[1:] if found[0].isupper() else choice

    return _PATTERN.sub(swap, stem)


class TemplateVariantGenerator:
    """Reorders the options and rephrases the stem from a synonym table; the same seed gives the same drafts."""

    name = "template"

    async def variants(self, *, question: QuestionDraft, count: int, seed: str) -> list[QuestionDraft]:
        """Drafts up to count variants of the question."""
        rng = random.Random(seed)
        drafts: list[QuestionDraft] = []
        seen = {(question.stem, tuple(question.options or ()))}
        for _ in range(count * 4):
            if len(drafts) == count:
                break
            draft = replace(question, stem=_rephrase(question.stem, rng))
            if question.options is not None and question.correct_option is not None:
                order = list(range(len(question.options)))
                rng.shuffle(order)
                draft = replace(
                    draft,
                    options=[question.options[i] for i in order],
                    correct_option=order.index(question.correct_option),
                )
            marker = (draft.stem, tuple(draft.options or ()))
            if marker not in seen:
                seen.add(marker)
                drafts.append(draft)
        return drafts
