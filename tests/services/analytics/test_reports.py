"""The dashboard, engagement metrics and the live stream, from client events folded by the aggregator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from prometheus_client import REGISTRY

from services.analytics.reports import streaks
from services.kit.time import utcnow
from tests.services.analytics.conftest import AnalyticsApi, learning_event


def test_a_streak_survives_until_a_whole_day_is_missed() -> None:
    today = utcnow().date()
    days = [today - timedelta(days=n) for n in (1, 2, 3, 6, 7, 8, 9)]
    assert streaks(days, today) == (3, 4)
    assert streaks(days, today + timedelta(days=2)) == (0, 4)
    assert streaks([], today) == (0, 0)


async def test_client_events_are_folded_into_the_dashboard_once(analytics: AnalyticsApi) -> None:
    api = analytics
    now, course_id = utcnow(), uuid.uuid4()
    events = [
        learning_event(api.student_id, occurred_at=(now - timedelta(days=d)).isoformat(), course_id=str(course_id))
        for d in (0, 1, 2, 4)
    ]
    events += [
        learning_event(
            api.student_id,
            type="question_answered",
            course_id=str(course_id),
            properties={"topic": "genetics", "correct": correct},
        )
        for correct in (True, True, False)
    ]
    assert (await api.send(events, headers=api.student)).status_code == 202
    assert await api.ctx.aggregator.measure_lag() > 0, "stored, not yet folded"
    assert await api.fold() == 7
    assert await api.fold() == 0, "folded events are not folded again"
    await api.send(events, headers=api.student)  # resent: duplicates, nothing new to fold
    assert await api.fold() == 0

    dashboard = await api.dashboard()
    assert dashboard["events"] == 7
    assert dashboard["time_spent_seconds"] == 120
    assert dashboard["active_days"] == 4
    assert (dashboard["current_streak_days"], dashboard["longest_streak_days"]) == (3, 3)
    practice = next(p for p in dashboard["performance"] if p["topic"] == "genetics")
    assert (practice["questions_answered"], practice["questions_correct"]) == (3, 2)

    report = (await api.client.get("/analytics/reports/performance", headers=api.admin)).json()["rows"]
    topic = next(r for r in report if r["course_id"] == str(course_id) and r["topic"] == "genetics")
    assert topic["questions_answered"] == 3 and topic["accuracy"] == 0.6667
    course = next(r for r in report if r["course_id"] == str(course_id) and r["topic"] is None)
    assert course["active_learner_days"] == 4

    lag = REGISTRY.get_sample_value("cerebrum_analytics_aggregation_lag_seconds", {"service": "analytics"})
    assert lag == 0.0, "caught up"


async def test_dashboards_are_for_their_learner_and_admins(analytics: AnalyticsApi) -> None:
    api = analytics
    url = f"/analytics/dashboard/{api.student_id}"
    assert (await api.client.get(url, headers=api.student)).status_code == 200
    assert (await api.client.get(url, headers=api.other)).status_code == 403
    assert (await api.client.get(url, headers=api.admin)).status_code == 200
    assert (await api.client.get(url)).status_code == 401


async def test_engagement_counts_active_learners_and_cohort_retention(analytics: AnalyticsApi) -> None:
    api = analytics
    now = utcnow()
    weeks_ago = now - timedelta(weeks=2)
    veteran, newcomer = uuid.uuid4(), uuid.uuid4()
    events = [
        learning_event(veteran, occurred_at=weeks_ago.isoformat()),
        learning_event(veteran, occurred_at=now.isoformat()),
        learning_event(newcomer, occurred_at=now.isoformat()),
        learning_event(newcomer, occurred_at=(now - timedelta(days=40)).isoformat()),
    ]
    assert (await api.send(events)).status_code == 202
    await api.fold()

    assert (await api.client.get("/analytics/metrics/engagement", headers=api.student)).status_code == 403
    response = await api.client.get("/analytics/metrics/engagement", params={"weeks": 4}, headers=api.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["daily_active"], body["weekly_active"], body["monthly_active"]) == (2, 2, 2)
    assert body["daily"][-1] == {"day": now.date().isoformat(), "active_learners": 2}
    cohort = body["cohorts"][0]
    veteran_week = (weeks_ago.date() - timedelta(days=weeks_ago.weekday())).isoformat()
    assert cohort["week"] == veteran_week and cohort["learners"] == 1
    assert cohort["retention"] == [1.0, 0.0, 1.0], "the newcomer's cohort is 40 days back, outside the window"


async def test_the_live_stream_sends_snapshots_to_admins(analytics: AnalyticsApi) -> None:
    api = analytics
    await api.send([learning_event(uuid.uuid4()) for _ in range(5)])
    await api.fold()
    assert (await api.client.get("/analytics/live", headers=api.student)).status_code == 403

    async with api.client.stream("GET", "/analytics/live", params={"max_events": 2}, headers=api.admin) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert len(frames) == 2
    snapshot = orjson.loads(frames[0].removeprefix("data: "))
    assert snapshot["active_learners"] == 5
    assert snapshot["events_per_minute"] > 0
    assert snapshot["window_seconds"] == 300
