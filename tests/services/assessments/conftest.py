from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, func, select

from services.assessments import repository
from services.assessments.app import create_app
from services.assessments.models import AssessmentsBase
from services.assessments.rating import question_start_rating
from services.assessments.settings import AssessmentsSettings
from services.kit.app import ServiceKit
from services.kit.auth import Role, TokenIssuer
from services.kit.time import utcnow
from tests.apps import embedded, real_servers, running
from tests.conftest import free_port

GENETICS = "genetics"
RUBRIC = [
    {"point": "makes ATP", "keywords": ["atp", "adenosine triphosphate"], "weight": 2.0},
    {"point": "aerobic respiration", "keywords": ["aerobic respiration", "krebs cycle"], "weight": 1.0},
    {"point": "double membrane", "keywords": ["double membrane", "cristae"], "weight": 1.0},
]


def mcq(topic: str = GENETICS, difficulty: int = 3, correct: int = 1, n: int = 0) -> dict[str, Any]:
    """A multiple-choice question row whose correct option is known."""
    return {
        "id": uuid.uuid4(),
        "topic": topic,
        "difficulty": difficulty,
        "kind": "mcq",
        "stem": f"{topic} question {n} at difficulty {difficulty}?",
        "options": ["Alpha", "Beta", "Gamma", "Delta"],
        "correct_option": correct,
        "rubric": None,
        "explanation": "Because Beta.",
        "rating": question_start_rating(difficulty),
        "created_at": utcnow(),
    }


def free_text(topic: str = GENETICS, difficulty: int = 3) -> dict[str, Any]:
    return {
        **mcq(topic, difficulty),
        "kind": "free_text",
        "stem": "Explain why mitochondria are called the powerhouse of the cell.",
        "options": None,
        "correct_option": None,
        "rubric": RUBRIC,
    }


class AssessmentsApi:
    """A client for the assessments API, tokens for any caller, and the app for checking what was stored."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI, settings: AssessmentsSettings) -> None:
        self.client = client
        self.app = app
        self.issuer = TokenIssuer(settings)

    @property
    def kit(self) -> ServiceKit:
        kit: ServiceKit = self.app.state.kit
        return kit

    def caller(self, role: Role = "student", user_id: uuid.UUID | None = None) -> tuple[uuid.UUID, dict[str, str]]:
        """A user id and the headers of a caller with that role."""
        user_id = user_id or uuid.uuid4()
        token = self.issuer.issue(user_id=user_id, role=role, session_id="s")
        return user_id, {"Authorization": f"Bearer {token}"}

    async def add(self, *rows: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.kit.db.session_scope() as db:
            await repository.insert_questions(db=db, rows=rows)
        return list(rows)

    async def count(self, model: type[AssessmentsBase] | Table) -> int:
        async with self.kit.db.session_scope() as db:
            return int((await db.execute(select(func.count()).select_from(model))).scalar_one())

    async def draw(self, headers: dict[str, str], attempt_id: uuid.UUID, **params: Any) -> httpx.Response:
        query = {"topic": GENETICS, "attempt_id": str(attempt_id), **params}
        return await self.client.get("/questions/random", params=query, headers=headers)

    async def start(
        self, headers: dict[str, str], rows: list[dict[str, Any]], attempt_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        """Starts an attempt that draws these questions (and any others of their topic and difficulty)."""
        attempt_id = attempt_id or uuid.uuid4()
        topic, difficulty = rows[0]["topic"], rows[0]["difficulty"]
        response = await self.draw(headers, attempt_id, topic=topic, difficulty=difficulty, count=100)
        assert response.status_code == 200, response.text
        assert {str(r["id"]) for r in rows} <= {q["id"] for q in response.json()["questions"]}
        return attempt_id

    async def submit(
        self,
        headers: dict[str, str],
        answers: list[dict[str, Any]],
        attempt_id: uuid.UUID | None = None,
        topic: str = GENETICS,
    ) -> httpx.Response:
        body = {
            "attempt_id": str(attempt_id or uuid.uuid4()),
            "topic": topic,
            "answers": [{**a, "question_id": str(a["question_id"])} for a in answers],
            "duration_seconds": 300,
        }
        return await self.client.post("/assessments/submit", json=body, headers=headers)


def answers_for(rows: list[dict[str, Any]], right: int) -> list[dict[str, Any]]:
    """Answers to the MCQ rows: the first `right` correct, the rest wrong."""
    return [
        {"question_id": r["id"], "choice": r["correct_option"] if i < right else (r["correct_option"] + 1) % 4}
        for i, r in enumerate(rows)
    ]


@pytest.fixture
async def assessments(pg_schema: str, redis_prefix: str, tmp_path: Path) -> AsyncIterator[AssessmentsApi]:
    """The assessments service on the real PostgreSQL and Redis."""
    settings = AssessmentsSettings(**real_servers(pg_schema, redis_prefix, tmp_path))
    app = create_app(settings)
    async with running(app) as client:
        yield AssessmentsApi(client, app, settings)


@pytest.fixture
async def redis_down(pg_schema: str, tmp_path: Path) -> AsyncIterator[AssessmentsApi]:
    """The service on the real PostgreSQL, with Redis pointing at a port nothing listens on."""
    settings = AssessmentsSettings(
        **{**real_servers(pg_schema, "unused:", tmp_path), "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    app = create_app(settings)
    async with running(app) as client:
        yield AssessmentsApi(client, app, settings)


@pytest.fixture
async def embedded_assessments(tmp_path: Path) -> AsyncIterator[AssessmentsApi]:
    """The service as `cerebrum up` runs it: SQLite and the in-process Redis stand-in."""
    settings = AssessmentsSettings(**{**embedded(tmp_path), "redis_key_prefix": f"emb-{uuid.uuid4().hex[:8]}:"})
    app = create_app(settings)
    async with running(app) as client:
        yield AssessmentsApi(client, app, settings)
