"""Canary traffic: both sides get their share of samples, however unluckily the students fall."""

from __future__ import annotations

import base64
import json
import uuid

import httpx

from slo.traffic import collect


def _token(user_id: str) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"sub": user_id}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{claims}.signature"


class Gateway:
    """Keeps each student on one side, as the gateway does; ``service_every`` students land on the service."""

    def __init__(self, service_every: int) -> None:
        self.service_every = service_every
        self.sides: dict[str, str] = {}
        self.sent = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/register":
            return httpx.Response(201, json={"status": "registered"})
        if request.url.path == "/api/auth/login":
            user_id = str(uuid.uuid4())
            self.sides[user_id] = "service" if (len(self.sides) + 1) % self.service_every == 0 else "monolith"
            return httpx.Response(200, json={"access_token": _token(user_id)})
        self.sent += 1
        payload = request.headers["authorization"].split(".")[1]
        user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        return httpx.Response(200, json={}, headers={"x-served-by": self.sides[user_id]})


def _collect(gateway: Gateway, requests: int) -> tuple[int, int]:
    with httpx.Client(transport=httpx.MockTransport(gateway), base_url="http://gateway") as client:
        samples = collect(client, prefix="courses", requests=requests, max_students=150)
    return len(samples.latencies("service")), len(samples.latencies("monolith"))


def test_students_found_late_on_the_small_side_still_leave_it_half_the_samples() -> None:
    # One student in 32 lands on the service: three are found only after 96 requests.
    service, monolith = _collect(Gateway(service_every=32), requests=120)
    assert service >= 60 and monolith >= 60


def test_an_even_split_sends_about_the_requests_asked_for() -> None:
    gateway = Gateway(service_every=2)
    service, monolith = _collect(gateway, requests=120)
    assert (service, monolith) == (60, 60)
    assert gateway.sent == 120
