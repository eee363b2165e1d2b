"""A student's whole path through the gateway, one recorded call per step.

The same calls a newcomer would copy: register, log in, browse and search, enrol, pay in the
sandbox, finish a lesson, take a test, look at the leaderboard and the notifications. Each step
keeps its request, status, time and the trace id the gateway answered with (``traceresponse``),
so a failing step can be looked up in Jaeger.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

TOPIC = "genetics"
# The enrolment is confirmed, and the notifications sent, by events after the payment: poll for them.
SETTLE_SECONDS = 15.0


@dataclass
class Step:
    """One call of the journey and what it answered."""

    name: str
    method: str
    path: str
    status: int | None = None
    ms: float = 0.0
    trace_id: str | None = None
    ok: bool = False
    note: str = ""


@dataclass
class JourneyResult:
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)


class StepFailed(Exception):
    """A step answered something else than the journey needs; the journey stops there."""


def trace_id_of(response: httpx.Response) -> str | None:
    """The trace that served the response, from W3C ``traceresponse`` (only when it was sampled)."""
    parts = response.headers.get("traceresponse", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


class Journey:
    """Runs the journey with one HTTP client (a live URL, or an in-process ASGI transport in tests)."""

    def __init__(self, client: httpx.AsyncClient, *, on_step: Callable[[Step], None] | None = None) -> None:
        self.client = client
        self.on_step = on_step
        self.result = JourneyResult()
        self.headers: dict[str, str] = {}

    async def call(
        self,
        name: str,
        method: str,
        path: str,
        *,
        expect: int,
        check: Callable[[httpx.Response], str | None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Makes one request; records it; raises StepFailed when the status or the check says no."""
        step = Step(name=name, method=method, path=path)
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            step.ms = (time.perf_counter() - started) * 1000
            step.note = f"{type(exc).__name__}: {exc}"
            self._record(step)
            raise StepFailed(step.note) from exc
        step.ms = (time.perf_counter() - started) * 1000
        step.status, step.trace_id = response.status_code, trace_id_of(response)
        problem = _describe(response) if response.status_code != expect else (check(response) if check else None)
        step.ok, step.note = problem is None, problem or ""
        self._record(step)
        if problem is not None:
            raise StepFailed(problem)
        return response

    async def until(
        self, name: str, path: str, done: Callable[[Any], str | None], *, timeout: float = SETTLE_SECONDS
    ) -> httpx.Response:
        """Polls a GET until ``done`` says nothing is missing; records only the last call."""
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            polls += 1
            started = time.perf_counter()
            response = await self.client.get(path, headers=self.headers)
            missing = done(response.json()) if response.status_code == 200 else _describe(response)
            if missing is None or time.monotonic() > deadline:
                step = Step(name, "GET", path, response.status_code, (time.perf_counter() - started) * 1000)
                step.trace_id, step.ok = trace_id_of(response), missing is None
                step.note = missing or (f"after {polls} polls" if polls > 1 else "")
                self._record(step)
                if missing is not None:
                    raise StepFailed(missing)
                return response
            await asyncio.sleep(0.2)

    def _record(self, step: Step) -> None:
        self.result.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    async def run(self) -> JourneyResult:
        """Walks the whole journey; stops at the first step that fails."""
        started = time.perf_counter()
        try:
            await self._walk()
        except StepFailed:
            pass
        self.result.seconds = time.perf_counter() - started
        return self.result

    async def _walk(self) -> None:
        email = f"journey-{secrets.token_hex(4)}@example.com"
        password = f"Journey-{secrets.token_urlsafe(9)}-7"
        account = {"email": email, "password": password, "full_name": "Journey Student"}
        user_id = (await self.call("register", "POST", "/api/auth/register", expect=201, json=account)).json()["id"]
        login = {"email": email, "password": password}
        tokens = (await self.call("log in", "POST", "/api/auth/login", expect=200, json=login)).json()
        self.headers["Authorization"] = f"Bearer {tokens['access_token']}"

        courses = (await self.call("browse the catalogue", "GET", "/api/courses", expect=200, check=_has_items)).json()
        await self.call("search", "GET", f"/api/courses/search?q={TOPIC}", expect=200, check=_has_items)
        course = next((c for c in courses["items"] if c["seats_left"] > 0), courses["items"][0])
        detail = (await self.call("a course", "GET", f"/api/courses/{course['id']}", expect=200)).json()

        body = {"course_id": course["id"]}
        enrolled = (await self.call("enrol", "POST", "/api/enrollments", expect=201, json=body)).json()
        # One active enrolment per course: a second try is refused and names the first.
        await self.call("enrol again (refused)", "POST", "/api/enrollments", expect=409, json=body)
        order_id, enrollment_id = enrolled["order"]["order_id"], enrolled["enrollment_id"]

        paid = {"order_id": order_id, "outcome": "success"}
        checkout = await self.call(
            "sandbox checkout",
            "POST",
            "/api/payments/sandbox/checkout",
            expect=200,
            json=paid,
            check=lambda r: None if r.json()["webhook"]["url"].startswith("/api/") else "a webhook URL off the gateway",
        )
        verify = {k: checkout.json()[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
        await self.call("verify the payment", "POST", "/api/payments/verify", expect=200, json=verify)
        await self.until(
            "enrolment confirmed",
            f"/api/enrollments/{enrollment_id}/status",
            lambda s: None if s["status"] == "confirmed" else f"still {s['status']}",
        )

        lesson = {"lesson_id": detail["lessons"][0]["id"], "completed": True, "time_spent_seconds": 600}
        await self.call("finish a lesson", "PUT", f"/api/enrollments/{enrollment_id}/progress", expect=200, json=lesson)

        await self.call("list the topics", "GET", "/api/questions/topics", expect=200, check=_has_items)
        attempt_id = str(uuid.uuid4())
        query = f"/api/questions/random?topic={TOPIC}&count=5&attempt_id={attempt_id}"
        drawn = (await self.call("draw a test", "GET", query, expect=200, check=_has_questions)).json()["questions"]
        answers = [{"question_id": q["id"], **({"choice": 0} if q.get("options") else {"text": "gene"})} for q in drawn]
        test = {"attempt_id": attempt_id, "topic": TOPIC, "answers": answers, "duration_seconds": 300}
        await self.call("submit the test", "POST", "/api/assessments/submit", expect=201, json=test)
        await self.call(
            "the leaderboard",
            "GET",
            f"/api/leaderboard/{TOPIC}",
            expect=200,
            check=lambda r: None if r.json().get("me") else "the student is not on the leaderboard",
        )

        wanted = {"welcome", "enrolment_confirmation", "payment_receipt", "assessment_result"}
        await self.until(
            "the notifications",
            f"/api/notifications/{user_id}",
            lambda n: _missing(wanted, {m["template"] for m in n["items"]}),
        )


def _has_items(response: httpx.Response) -> str | None:
    return None if response.json().get("items") else "an empty list"


def _has_questions(response: httpx.Response) -> str | None:
    return None if response.json().get("questions") else "no questions drawn"


def _missing(wanted: set[str], seen: set[str]) -> str | None:
    return f"no {', '.join(sorted(wanted - seen))} yet" if wanted - seen else None


def _describe(response: httpx.Response) -> str:
    """What a failed response says: a problem's title and detail, or the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return f"answered {response.status_code}: {response.text[:120]}"
    if isinstance(body, dict) and "title" in body:
        return f"{body['title']}: {body.get('detail', '')}".strip(": ")
    return f"answered {response.status_code}"


async def run_journey(client: httpx.AsyncClient, *, on_step: Callable[[Step], None] | None = None) -> JourneyResult:
    """Walks a new student's journey through the gateway the client points at."""
    return await Journey(client, on_step=on_step).run()
