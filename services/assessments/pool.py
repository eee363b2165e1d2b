"""Question pools in Redis: a set of question ids per (topic, difficulty), and the ids each attempt was served.

A pool is re-read from the database when it is empty or older than its TTL; question bodies are
cached as a student may see them (never with their answers). An attempt's served ids are added
one by one with SADD, whose reply says whether this call added the id, so two concurrent draws
for the same attempt can never both hand out the same question.
"""

from __future__ import annotations

import random
import uuid
from typing import cast

import orjson
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from observability.metrics import counter
from services.assessments import repository
from services.assessments.models import Question
from services.assessments.schemas import QuestionOut
from services.assessments.settings import AssessmentsSettings
from services.kit.cache import key

POOL_REFRESHES = counter(
    "cerebrum_question_pool_refreshes_total", "Question pools re-read from the database.", ("topic",)
)
_DRAW_ROUNDS = 3


def public_view(question: Question) -> QuestionOut:
    """The question as a student sees it: no correct option, rubric or explanation."""
    return QuestionOut(
        id=question.id,
        topic=question.topic,
        difficulty=question.difficulty,
        kind=question.kind,  # type: ignore[arg-type]
        stem=question.stem,
        options=question.options,
    )


class QuestionPool:
    def __init__(self, *, redis: aioredis.Redis, settings: AssessmentsSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.random = random.Random()

    def _pool(self, topic: str, difficulty: int) -> str:
        return key(self.settings, "pool", topic, difficulty)

    def _fresh(self, topic: str, difficulty: int) -> str:
        return key(self.settings, "pool", topic, difficulty, "fresh")

    def _body(self, question_id: object) -> str:
        return key(self.settings, "question", question_id)

    def _served(self, user_id: uuid.UUID, attempt_id: uuid.UUID) -> str:
        return key(self.settings, "attempt", user_id, attempt_id, "served")

    async def _ensure_fresh(self, db: AsyncSession, topic: str, difficulty: int) -> None:
        pool = self._pool(topic, difficulty)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._fresh(topic, difficulty))
            pipe.scard(pool)
            fresh, size = await pipe.execute()
        if fresh and size:
            return
        ids = await repository.pool_question_ids(
            db=db, topic=topic, difficulty=difficulty, limit=self.settings.question_pool_max_size
        )
        POOL_REFRESHES.labels(topic).inc()
        if not ids:
            return
        # One MULTI: readers see the old pool or the new one, never an empty one.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(pool)
            pipe.sadd(pool, *map(str, ids))
            pipe.set(self._fresh(topic, difficulty), "1", ex=self.settings.question_pool_ttl_seconds)
            await pipe.execute()

    async def draw(
        self,
        *,
        db: AsyncSession,
        topic: str,
        difficulty: int,
        count: int,
        user_id: uuid.UUID,
        attempt_id: uuid.UUID,
    ) -> list[QuestionOut]:
        """Draws up to count questions this attempt has not been served yet, and remembers them."""
        await self._ensure_fresh(db, topic, difficulty)
        pool, served = self._pool(topic, difficulty), self._served(user_id, attempt_id)
        picked: list[str] = []
        for round_ in range(_DRAW_ROUNDS):
            if round_ == 0:
                # Most draws are an attempt's first, from a pool far larger than the paper: a
                # random handful straight from Redis. Any it was served already leave the paper
                # short, and the rounds after draw from the pool less what it was served.
                sample = [str(m) for m in cast(list[str], await self.redis.srandmember(pool, count))]
            else:
                candidates = sorted(str(m) for m in await self.redis.sdiff([pool, served]))
                sample = self.random.sample(candidates, min(count - len(picked), len(candidates)))
            if not sample:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for question_id in sample:
                    pipe.sadd(served, question_id)
                pipe.expire(served, self.settings.attempt_memory_ttl_seconds)
                added = await pipe.execute()
            picked += [question_id for question_id, new in zip(sample, added, strict=False) if new]
            if len(picked) >= count:
                break
        return await self._bodies(db, picked)

    async def _bodies(self, db: AsyncSession, question_ids: list[str]) -> list[QuestionOut]:
        if not question_ids:
            return []
        cached = await self.redis.mget([self._body(q) for q in question_ids])
        found = {q: QuestionOut.model_validate_json(raw) for q, raw in zip(question_ids, cached, strict=True) if raw}
        missing = [uuid.UUID(q) for q in question_ids if q not in found]
        if missing:
            loaded = await repository.get_questions(db=db, question_ids=missing)
            async with self.redis.pipeline(transaction=False) as pipe:
                for question in loaded.values():
                    view = public_view(question)
                    found[str(question.id)] = view
                    pipe.set(
                        self._body(question.id),
                        orjson.dumps(view.model_dump(mode="json")),
                        ex=self.settings.question_cache_ttl_seconds,
                    )
                await pipe.execute()
        return [found[q] for q in question_ids if q in found]

    async def add(self, question: Question) -> None:
        """Puts a new question into its pool at once, if that pool is live (else the next refresh reads it)."""
        pool = self._pool(question.topic, question.difficulty)
        if await self.redis.exists(pool):
            await self.redis.sadd(pool, str(question.id))
