"""Leaderboards in Redis sorted sets: order, the caller's rank, ties, and Redis outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.assessments import service
from tests.services.assessments.conftest import AssessmentsApi, answers_for, mcq

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def test_leaderboard_orders_by_points_then_earliest_then_user_id(
    assessments: AssessmentsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = await assessments.add(*(mcq(n=i) for i in range(3)))
    ecology = await assessments.add(mcq(topic="ecology"))
    students = {name: assessments.caller() for name in ("early", "late_a", "late_b", "low")}
    plan = [("early", 2, T0), ("late_a", 2, T0 + timedelta(minutes=5)), ("late_b", 2, T0 + timedelta(minutes=5))]
    plan.append(("low", 1, T0))
    for name, right, at in plan:
        monkeypatch.setattr(service, "utcnow", lambda at=at: at)
        attempt = await assessments.start(students[name][1], rows)
        response = await assessments.submit(students[name][1], answers_for(rows, right=right), attempt_id=attempt)
        assert response.status_code == 201
    # Ecology points count overall but not on the genetics board.
    monkeypatch.setattr(service, "utcnow", lambda: T0 + timedelta(hours=1))
    attempt = await assessments.start(students["low"][1], ecology)
    await assessments.submit(students["low"][1], answers_for(ecology, right=1), attempt, topic="ecology")

    same_time = sorted(("late_a", "late_b"), key=lambda n: str(students[n][0]))
    expected = ["early", *same_time, "low"]
    board = await assessments.client.get("/leaderboard/genetics?limit=10", headers=students["late_b"][1])
    assert board.status_code == 200
    entries = board.json()["entries"]
    assert [e["user_id"] for e in entries] == [str(students[n][0]) for n in expected]
    assert [e["points"] for e in entries] == [2.0, 2.0, 2.0, 1.0]
    assert [e["rank"] for e in entries] == [1, 2, 3, 4]
    me = board.json()["me"]
    assert me == {"rank": expected.index("late_b") + 1, "user_id": str(students["late_b"][0]), "points": 2.0}

    top2 = (await assessments.client.get("/leaderboard/genetics?limit=2", headers=students["low"][1])).json()
    assert len(top2["entries"]) == 2 and top2["me"]["rank"] == 4
    overall = (await assessments.client.get("/leaderboard/overall", headers=students["low"][1])).json()
    assert overall["entries"][-1] == {"rank": 4, "user_id": str(students["low"][0]), "points": 2.0}
    # Equal total, reached later: "low" stays below the three who got there first.
    stranger = assessments.caller()[1]
    assert (await assessments.client.get("/leaderboard/genetics", headers=stranger)).json()["me"] is None
    assert (await assessments.client.get("/leaderboard/genetics?limit=0", headers=stranger)).status_code == 422


async def test_leaderboard_without_redis_is_a_clear_503(redis_down: AssessmentsApi) -> None:
    rows = await redis_down.add(mcq())
    _, student = redis_down.caller()
    # A submission still succeeds: the leaderboard is brought up to date by the next one.
    attempt = await redis_down.start(student, rows)
    assert (await redis_down.submit(student, answers_for(rows, right=1), attempt_id=attempt)).status_code == 201
    response = await redis_down.client.get("/leaderboard/overall", headers=student)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["dependency"] == "redis"
    assert "redis" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"
