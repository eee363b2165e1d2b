"""The embedded platform writes one access line per request, at the gateway, however many services it reaches."""

from __future__ import annotations

import httpx

from cerebrum.demo import seed_academy
from cerebrum.platform import Platform
from tests.conftest import LogCapture
from tests.journeys.conftest import embedded  # noqa: F401  (the fixture)


async def test_a_gateway_request_is_one_access_line(
    embedded: tuple[Platform, httpx.AsyncClient],  # noqa: F811
    logs: LogCapture,
) -> None:
    platform, api = embedded
    await seed_academy(platform.apps)
    body = {"email": "one-line@example.com", "password": "Chlorophyll-a-680", "full_name": "One Line"}
    assert (await api.post("/api/auth/register", json=body)).status_code == 201
    login = {"email": body["email"], "password": body["password"]}
    token = (await api.post("/api/auth/login", json=login)).json()
    course = (await api.get("/api/courses")).json()["items"][0]
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    # The enrolment reaches users, courses and payments in-process behind the gateway and enrollments.
    assert (await api.post("/api/enrollments", json={"course_id": course["id"]}, headers=bearer)).status_code == 201
    direct = await api.get("/courses")  # a service's own path: its own line, as before

    access = [(line["service"], line["method"], line["path"]) for line in logs.lines() if line["event"] == "request"]
    assert access == [
        ("gateway", "POST", "/api/auth/register"),
        ("gateway", "POST", "/api/auth/login"),
        ("gateway", "GET", "/api/courses"),
        ("gateway", "POST", "/api/enrollments"),
        ("courses", "GET", "/courses"),
    ]
    assert direct.status_code == 200
