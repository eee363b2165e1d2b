"""A question bank written from templates: 50,000 NEET-style biology MCQs in seconds, the same for a seed."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.assessments import repository
from services.assessments.bank_data import FACTS, FREE_TEXT, Fact
from services.assessments.rating import question_start_rating
from services.kit.time import utcnow

CHUNK = 5_000
DEMO_MCQS = 296
OPTIONS = 4

_ASK_TERM = (
    "Which of the following is {d}?",
    "Identify the {k} described as {d}.",
    "A NEET aspirant reads about {d}. Which {k} is meant?",
    "Select the {k} that matches this description: {d}.",
)
_ASK_DESCRIPTION = (
    "{t} is best described as:",
    "Which statement about {t} is correct?",
    "Select the correct description of {t}.",
    "What is true of {t}?",
)
_NOT_MATCHED = (
    "Which of the following pairs is NOT correctly matched?",
    "Identify the incorrect pair.",
    "Which one of these matches is wrong?",
)


def _others(rng: random.Random, facts: list[Fact], fact: Fact, n: int) -> list[Fact]:
    """Distractors: facts of the same kind first, then any other fact of the topic."""
    same = [f for f in facts if f is not fact and f[1] == fact[1]]
    rest = [f for f in facts if f is not fact and f[1] != fact[1]]
    rng.shuffle(same)
    rng.shuffle(rest)
    return (same + rest)[:n]


def _mcq(rng: random.Random, facts: list[Fact]) -> tuple[str, list[str], int, str, int]:
    """Writes one question from a fact: (stem, options, correct index, explanation, difficulty)."""
    fact = rng.choice(facts)
    term, kind, description, base = fact
    others = _others(rng, facts, fact, OPTIONS - 1)
    style = rng.random()
    if style < 0.45:
        stem = rng.choice(_ASK_TERM).format(d=description, k=kind)
        options, correct = [o[0] for o in others], term
    elif style < 0.85:
        stem = rng.choice(_ASK_DESCRIPTION).format(t=term)
        options, correct = [o[2] for o in others], description
        correct = correct[0].upper() + correct[1:]
        options = [o[0].upper() + o[1:] for o in options]
    else:
        stem = rng.choice(_NOT_MATCHED)
        wrong = others[0]
        options = [f"{o[0]} – {o[2]}" for o in others[1:]] + [f"{term} – {description}"]
        correct = f"{wrong[0]} – {rng.choice(others[1:])[2]}"
        term, description, base = wrong[0], wrong[2], base + 1
    position = rng.randrange(OPTIONS)
    options.insert(position, correct)
    difficulty = base + (rng.random() < 0.25) - (rng.random() < 0.15)
    return stem, options, position, f"{term}: {description}.", max(1, min(5, difficulty))


def _row(question_id: uuid.UUID, topic: str, now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": question_id,
        "topic": topic,
        "options": None,
        "correct_option": None,
        "rubric": None,
        "explanation": None,
        "rating": question_start_rating(fields["difficulty"]),
        "created_at": now,
        **fields,
    }


async def generate_bank(*, db: AsyncSession, count: int = 50_000, seed: int = 7) -> int:
    """Inserts count template-written biology MCQs across every topic and difficulty; returns how many."""
    rng = random.Random(seed)
    topics = sorted(FACTS)
    now = utcnow()
    done = 0
    while done < count:
        rows = []
        for i in range(done, min(done + CHUNK, count)):
            topic = topics[i % len(topics)]
            stem, options, correct, explanation, difficulty = _mcq(rng, FACTS[topic])
            rows.append(
                _row(
                    uuid.uuid4(),
                    topic,
                    now,
                    kind="mcq",
                    difficulty=difficulty,
                    stem=stem,
                    options=options,
                    correct_option=correct,
                    explanation=explanation,
                )
            )
        await repository.insert_questions(db=db, rows=rows)
        done += len(rows)
    return done


async def seed_demo_questions(*, db: AsyncSession) -> int:
    """Inserts the demo's questions once (about 300 MCQs and a free-text question per topic); returns how many."""
    if await repository.count_questions(db=db) > 0:
        return 0
    now = utcnow()
    free_text = [
        _row(uuid.uuid4(), topic, now, kind="free_text", difficulty=difficulty, stem=stem, rubric=rubric)
        for topic, items in sorted(FREE_TEXT.items())
        for stem, rubric, difficulty in items
    ]
    await repository.insert_questions(db=db, rows=free_text)
    return len(free_text) + await generate_bank(db=db, count=DEMO_MCQS)
