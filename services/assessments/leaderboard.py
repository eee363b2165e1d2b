"""Leaderboards in Redis sorted sets: one per topic and one "overall", ranked by total points.

Ties are broken by who reached the total first, then by user id. Both live in the member's score:
``-(tenths of a point · 2^31 + (2^31 - 1 - seconds since 2024))``, so the smallest score ranks
first and Redis orders equal scores by member, ascending. The database stays the source of truth:
each submission writes the student's recomputed total, and ``LT`` keeps a replayed or out-of-order
write from moving anyone down.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import redis.asyncio as aioredis

from services.assessments.schemas import LeaderboardEntry, LeaderboardOut
from services.assessments.settings import AssessmentsSettings
from services.kit.cache import REDIS_UNAVAILABLE, key
from services.kit.errors import DependencyUnavailable

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_TIME_SPAN = 2**31


def encode(points: float, achieved_at: datetime) -> float:
    """The sorted-set score: more points first, then the earlier achievement."""
    seconds = min(_TIME_SPAN - 1, max(0, int((achieved_at - _EPOCH).total_seconds())))
    return -float(round(points * 10) * _TIME_SPAN + (_TIME_SPAN - 1 - seconds))


def decode(score: float) -> float:
    """The points a sorted-set score stands for."""
    return math.floor(-score / _TIME_SPAN) / 10


class Leaderboard:
    def __init__(self, *, redis: aioredis.Redis, settings: AssessmentsSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _board(self, category: str) -> str:
        return key(self.settings, "leaderboard", category)

    async def record(self, *, user_id: uuid.UUID, totals: dict[str, float], achieved_at: datetime) -> None:
        """Sets a student's totals, one per category; raises RedisError when Redis is down."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for category, points in totals.items():
                pipe.zadd(self._board(category), {str(user_id): encode(points, achieved_at)}, lt=True)
            await pipe.execute()

    async def standings(self, *, category: str, limit: int, user_id: uuid.UUID) -> LeaderboardOut:
        """Gets the top of a leaderboard and the caller's own place."""
        board = self._board(category)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrange(board, 0, limit - 1, withscores=True)
                pipe.zrank(board, str(user_id))
                pipe.zscore(board, str(user_id))
                top, my_rank, my_score = await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            raise DependencyUnavailable(
                "redis", "The leaderboard lives in redis, which is unavailable; try again shortly"
            ) from exc
        entries = [
            LeaderboardEntry(rank=i + 1, user_id=uuid.UUID(member), points=decode(score))
            for i, (member, score) in enumerate(top)
        ]
        me = None
        if my_rank is not None and my_score is not None:
            me = LeaderboardEntry(rank=int(my_rank) + 1, user_id=user_id, points=decode(float(my_score)))
        return LeaderboardOut(category=category, entries=entries, me=me)
