"""A student through the gateway of the embedded platform: every call is /api/<prefix>/..."""

from __future__ import annotations

import uuid

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
