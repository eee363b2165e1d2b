"""The requests bench.cpu sends: the academy's students and each request type they make.

Each request type is a function of the n-th student; state carries from one type to the next (a
drawn paper to its submission, an enrolment to its checkout, verification and progress).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Academy:
    """What the requests need: students (pool accounts), a course and its lessons."""

    client: httpx.Client
    password: str
    accounts: list[dict[str, str]]
    course_id: str
    lessons: list[str]
    newcomers: list[dict[str, str]]
    """Accounts whose tokens no server has seen: the warm-up leaves them out."""

    def auth(self, n: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.accounts[n % len(self.accounts)]['token']}"}

    def known(self, n: int) -> int:
        """The n-th student's token, once through every service its requests reach (not measured).

        A student's token is checked (an Ed25519 signature, 0.2 ms) the first time the gateway and
        each service see it, and remembered after that: a student's 72 requests of the mix pay it
        once per process, so the measured requests find it remembered, as a student's do. The row
        "a token not seen before" prices the first time.
        """
        user = self.accounts[n % len(self.accounts)]["user_id"]
        paths = (
            "/api/users/profile",
            f"/api/courses/{self.course_id}",
            f"/api/analytics/dashboard/{user}",
            f"/api/enrollments/student/{user}",
            f"/api/payments/history/{user}",
            "/api/leaderboard/genetics",
        )
        statuses = [self.client.get(path, headers=self.auth(n)).status_code for path in paths]
        return max(statuses)


def _paper(academy: Academy, n: int, papers: list[tuple[int, dict[str, Any]]]) -> int:
    attempt = str(uuid.uuid4())
    got = academy.client.get(
        "/api/questions/random",
        params={"topic": "genetics", "count": 10, "attempt_id": attempt},
        headers=academy.auth(n),
    )
    if got.status_code == 200:
        papers.append((n, {"attempt_id": attempt, **got.json()}))
    return got.status_code


def _answers(paper: dict[str, Any]) -> dict[str, Any]:
    answers = [
        {"question_id": q["id"], "choice": 0} if q.get("options") else {"question_id": q["id"], "text": "Genes"}
        for q in paper.get("questions", [])
    ]
    return {"attempt_id": paper["attempt_id"], "topic": "genetics", "answers": answers, "duration_seconds": 200}


def request_types(academy: Academy) -> list[tuple[str, Callable[[int], int]]]:
    """Each request type as a function of the n-th student; state carries from one type to the next."""
    c = academy.client
    papers: list[tuple[int, dict[str, Any]]] = []
    orders: dict[int, str] = {}
    enrolled: dict[int, str] = {}
    checkouts: dict[int, dict[str, Any]] = {}
    fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")

    def enrol(n: int) -> int:
        got = c.post("/api/enrollments", json={"course_id": academy.course_id}, headers=academy.auth(n))
        if got.status_code == 201:
            body = got.json()
            enrolled[n] = str(body["enrollment_id"])
            order = body.get("order") or {}
            if order.get("id") or order.get("order_id"):
                orders[n] = str(order.get("id") or order.get("order_id"))
        return got.status_code

    def checkout(n: int) -> int:
        if n not in orders:
            return 0
        got = c.post(
            "/api/payments/sandbox/checkout",
            json={"order_id": orders[n], "outcome": "success"},
            headers=academy.auth(n),
        )
        if got.status_code == 200:
            checkouts[n] = got.json()
        return got.status_code

    def verify(n: int) -> int:
        if n not in checkouts:
            return 0
        body = {k: checkouts[n][k] for k in fields}
        return c.post("/api/payments/verify", json=body, headers=academy.auth(n)).status_code

    def progress(n: int) -> int:
        if n not in enrolled or not academy.lessons:
            return 0
        body = {"lesson_id": academy.lessons[n % len(academy.lessons)], "completed": True, "time_spent_seconds": 600}
        return c.put(f"/api/enrollments/{enrolled[n]}/progress", json=body, headers=academy.auth(n)).status_code

    def submit(n: int) -> int:
        if not papers:
            return 0
        who, paper = papers.pop()
        return c.post("/api/assessments/submit", json=_answers(paper), headers=academy.auth(who)).status_code

    def login(n: int) -> int:
        account = academy.accounts[n % len(academy.accounts)]
        body = {"email": account["email"], "password": academy.password}
        return c.post("/api/auth/login", json=body).status_code

    def get(path: Callable[[int], str]) -> Callable[[int], int]:
        return lambda n: c.get(path(n), headers=academy.auth(n)).status_code

    def fresh(n: int) -> int:
        # A student back after thinking longer than the server keeps an idle connection: a new one.
        with httpx.Client(base_url=str(c.base_url), timeout=30) as one:
            return one.get(f"/api/courses/{academy.course_id}", headers=academy.auth(n)).status_code

    def newcomer(n: int) -> int:
        token = academy.newcomers[n % len(academy.newcomers)]["token"]
        return c.get(f"/api/courses/{academy.course_id}", headers={"Authorization": f"Bearer {token}"}).status_code

    def user_id(n: int) -> str:
        return academy.accounts[n % len(academy.accounts)]["user_id"]

    return [
        ("POST /auth/login", login),
        ("GET /courses (catalogue)", get(lambda n: "/api/courses")),
        ("GET /courses/{id}", get(lambda n: f"/api/courses/{academy.course_id}")),
        ("GET /courses/{id}, new connection", fresh),
        ("GET /courses/{id}, a token not seen before", newcomer),
        ("GET /users/profile", get(lambda n: "/api/users/profile")),
        ("GET /courses/search", get(lambda n: "/api/courses/search?q=genetics")),
        ("GET /curriculum/{grade}", get(lambda n: "/api/curriculum/12")),
        ("GET /leaderboard/{topic}", get(lambda n: "/api/leaderboard/genetics")),
        ("GET /analytics/dashboard/{id}", get(lambda n: f"/api/analytics/dashboard/{user_id(n)}")),
        ("GET /questions/random", lambda n: _paper(academy, n, papers)),
        ("POST /assessments/submit", submit),
        ("POST /enrollments (saga)", enrol),
        ("POST /payments/sandbox/checkout", checkout),
        ("POST /payments/verify", verify),
        ("PUT /enrollments/{id}/progress", progress),
    ]
