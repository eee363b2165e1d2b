"""A student through the gateway of the embedded platform: every call is /api/<prefix>/..."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from cerebrum.demo import seed_academy
from cerebrum.platform import Platform


async def test_sign_up_browse_and_test_through_the_gateway(embedded: tuple[Platform, httpx.AsyncClient]) -> None:
    platform, api = embedded
    await seed_academy(platform.apps)
    body = {"email": "journey@example.com", "password": "Krebs-cycle-2026", "full_name": "Journey Student"}
    assert (await api.post("/api/auth/register", json=body)).status_code == 201
    login = await api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
    assert login.status_code == 200 and login.headers["x-served-by"] == "service"
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await api.get("/api/users/profile", headers=bearer)).json()["email"] == body["email"]

    courses = (await api.get("/api/courses")).json()
    assert courses["total"] >= 8, "browsing needs no token"
    hits = (await api.get("/api/courses/search", params={"q": "genetics"})).json()["items"]
    assert hits
    questions = await api.get(
        "/api/questions/random",
        headers=bearer,
        params={"topic": "genetics", "count": 3, "attempt_id": str(uuid.uuid4())},
    )
    assert questions.status_code == 200 and len(questions.json()["questions"]) == 3
    assert (await api.get("/api/questions/random")).status_code == 401, "tests need a token at the edge"

    spec = (await api.get("/api/openapi.json")).json()
    assert "/api/auth/login" in spec["paths"] and "/api/courses/search" in spec["paths"]


async def test_registering_sends_a_welcome_through_the_event_bus(embedded: tuple[Platform, httpx.AsyncClient]) -> None:
    _, api = embedded
    body = {"email": "welcome@example.com", "password": "Stomata-Open-2026", "full_name": "Welcome Student"}
    user_id = (await api.post("/api/auth/register", json=body)).json()["id"]
    token = (await api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    messages: list[dict[str, object]] = []
    for _ in range(50):
        messages = (await api.get(f"/api/notifications/{user_id}", headers=bearer)).json()["items"]
        if messages:
            break
        await asyncio.sleep(0.1)
    assert [m["template"] for m in messages] == ["welcome"], "user.registered reached communication once"
    assert messages[0]["channel"] == "email"


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_enrol_pay_and_get_confirmed_across_services(embedded: tuple[Platform, httpx.AsyncClient]) -> None:
    platform, api = embedded
    await seed_academy(platform.apps)
    body = {"email": "enrol@example.com", "password": "Mendelian-Ratio-3", "full_name": "Enrol Student"}
    user_id = (await api.post("/api/auth/register", json=body)).json()["id"]
    token = (await api.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    course = (await api.get("/api/courses")).json()["items"][0]

    enrolled = await api.post("/api/enrollments", json={"course_id": course["id"]}, headers=bearer)
    assert enrolled.status_code == 201, enrolled.text
    enrollment = enrolled.json()
    assert enrollment["status"] == "pending_payment"
    order = enrollment["order"]
    assert order["amount_paise"] == course["price_paise"]
    seats = (await api.get(f"/api/courses/{course['id']}")).json()["seats_left"]
    assert seats == course["seats_left"] - 1, "the saga reserved a seat"

    checkout = (
        await api.post("/api/payments/sandbox/checkout", json={"order_id": order["order_id"]}, headers=bearer)
    ).json()
    verify = {k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    assert (await api.post("/api/payments/verify", json=verify, headers=bearer)).status_code == 200

    async def confirmed() -> bool:
        status = await api.get(f"/api/enrollments/{enrollment['enrollment_id']}/status", headers=bearer)
        return bool(status.json()["status"] == "confirmed")

    assert await _until(confirmed), "payment.succeeded confirmed the enrolment through the bus"

    async def notified() -> set[str]:
        items = (await api.get(f"/api/notifications/{user_id}", headers=bearer)).json()["items"]
        return {m["template"] for m in items}

    async def all_three() -> bool:
        return {"welcome", "enrolment_confirmation", "payment_receipt"} <= await notified()

    assert await _until(all_three), await notified()
    mine = (await api.get(f"/api/enrollments/student/{user_id}", headers=bearer)).json()
    assert [e["status"] for e in mine["items"]] == ["confirmed"]

    # Progress on a lesson and a test: both reach the student's analytics dashboard through events.
    detail = (await api.get(f"/api/courses/{course['id']}")).json()
    progress = await api.put(
        f"/api/enrollments/{enrollment['enrollment_id']}/progress",
        headers=bearer,
        json={"lesson_id": detail["lessons"][0]["id"], "completed": True, "time_spent_seconds": 600},
    )
    assert progress.status_code == 200, progress.text
    attempt = str(uuid.uuid4())
    drawn = (
        await api.get(
            "/api/questions/random", headers=bearer, params={"topic": "genetics", "count": 3, "attempt_id": attempt}
        )
    ).json()["questions"]
    answers = [
        {"question_id": q["id"], "choice": 0} if q.get("options") else {"question_id": q["id"], "text": "gene"}
        for q in drawn
    ]
    submitted = await api.post(
        "/api/assessments/submit",
        headers=bearer,
        json={"attempt_id": attempt, "topic": "genetics", "answers": answers, "duration_seconds": 120},
    )
    assert submitted.status_code == 201, submitted.text
    board = await api.get("/api/leaderboard/genetics", headers=bearer)
    assert board.status_code == 200 and board.json()["me"] is not None

    async def dashboard_shows_it() -> bool:
        view = (await api.get(f"/api/analytics/dashboard/{user_id}", headers=bearer)).json()
        genetics = [p["questions_answered"] for p in view["performance"] if p["topic"] == "genetics"]
        return bool(
            view["lessons_completed"] >= 1
            and view["assessments"] >= 1
            and view["time_spent_seconds"] == 600 + 120  # the lesson's time and the test's, each once
            and genetics == [len(answers)]
        )

    assert await _until(dashboard_shows_it, timeout=15), (
        "progress and the test reached the analytics dashboard",
        (await api.get(f"/api/analytics/dashboard/{user_id}", headers=bearer)).json(),
    )

    async def result_sent() -> bool:
        return "assessment_result" in await notified()

    assert await _until(result_sent), "the assessment result reached the student's notifications"


async def test_every_consumers_queue_is_declared_for_the_events_it_handles(
    embedded: tuple[Platform, httpx.AsyncClient],
) -> None:
    from cerebrum.registry import SERVICES

    platform, _ = embedded
    for name, spec in SERVICES.items():
        consumer = platform.apps[name].state.kit.consumer
        handled = set(consumer.routing_keys) if consumer else set()
        assert set(spec.consumes) == handled, f"{name}: distributed mode declares {spec.consumes}, handles {handled}"
