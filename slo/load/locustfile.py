"""The academy's load: students on realistic journeys, and a few admins. Run by `cerebrum load run`.

Students open the home page (profile and catalogue) and browse and search often, look at the
curriculum, take tests and check the leaderboard now and then, track progress and open their
dashboard in between, and enrol and pay rarely. Each student registers fresh (their own account,
so nothing is shared between users), or takes the next account of a pool made before the run
(LOAD_POOL, written by `cerebrum seed students`, already signed in), and thinks between steps.
Every request is marked synthetic: ``X-Synthetic: locust`` and W3C ``baggage: synthetic=true,load_test=<run id>``.

A step on a prefix the platform does not serve yet (not in the gateway's merged OpenAPI, or
answered 404/501 by the gateway itself) is skipped and counted, unless LOAD_STRICT=1 makes it a
failure. A request fails when it gets a 5xx, no answer, or a status its step did not expect.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.env import Environment

from slo.load.shapes import shape as make_shape

RUN_ID = os.environ.get("LOAD_RUN_ID", f"load-{uuid.uuid4().hex[:8]}")
STRICT = os.environ.get("LOAD_STRICT", "0") == "1"
OUT = Path(os.environ.get("LOAD_OUT", "."))
THINK = (float(os.environ.get("LOAD_THINK_MIN", "1")), float(os.environ.get("LOAD_THINK_MAX", "5")))
ACCOUNTS = os.environ.get("LOAD_ACCOUNTS")
SEARCH_TERMS = ("genetics", "cell", "evolution", "ecology", "plant", "human physiology", "neet", "biotechnology")
TOPICS = ("genetics", "cell-biology", "ecology", "evolution", "human-physiology", "plant-physiology")
MARKS = {"X-Synthetic": "locust", "baggage": f"synthetic=true,load_test={RUN_ID}"}
# Each simulated student signs up and logs in once, when it starts: in a short run that is a third
# of the users service's traffic, far from the real mix (a student logs in once a session), so
# these steps are named apart and the evaluator leaves them out unless asked (--include-setup).
SETUP = "[setup]"
# A student coming back for a new session logs in again (argon2 on every login): a task of this
# weight when LOAD_LOGIN_WEIGHT is set (`cerebrum slo quiet` sets it), none otherwise.
LOGIN_WEIGHT = int(os.environ.get("LOAD_LOGIN_WEIGHT", "0"))
# A pool of accounts made before the run (`cerebrum seed students`): each student takes the next
# one, already signed in, instead of registering on arrival.
POOL_FILE = os.environ.get("LOAD_POOL")

served: set[str] | None = None
"""First path segments the gateway serves (from its merged OpenAPI); None: unknown, try them all."""
skipped: Counter[str] = Counter()
course_ids: list[str] = []
lesson_ids: dict[str, list[str]] = {}


@events.test_start.add_listener
def _discover(environment: Environment, **_: Any) -> None:
    global served
    try:
        response = requests.get(f"{environment.host}/api/openapi.json", headers=MARKS, timeout=10)
        paths = response.json().get("paths", {}) if response.status_code == 200 else {}
        served = {path.split("/")[2] for path in paths if path.count("/") >= 2} or None
    except (requests.RequestException, ValueError):
        served = None


@events.quitting.add_listener
def _write_skips(environment: Environment, **_: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "skipped.json").write_text(json.dumps(dict(sorted(skipped.items())), indent=2) + "\n")


def _prefix(path: str) -> str | None:
    """The gateway prefix of an ``/api/...`` path; None for the gateway's own routes."""
    if not path.startswith("/api/"):
        return None
    return path.removeprefix("/api/").split("/", 1)[0].split("?", 1)[0]


class AcademyUser(FastHttpUser):
    abstract = True
    wait_time = between(*THINK)
    default_headers = MARKS

    def on_start(self) -> None:
        self.auth: dict[str, str] = {}

    def call(self, method: str, path: str, *, name: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        """One step; returns the decoded JSON body on an expected status, else None."""
        prefix = _prefix(path)
        if served is not None and prefix is not None and prefix not in served and not STRICT:
            skipped[name] += 1
            return None
        headers = {**MARKS, **self.auth}
        with self.client.request(method, path, name=name, catch_response=True, headers=headers, **kwargs) as response:
            if response.status_code in expect:
                response.success()
                try:
                    return response.json() if response.content else {}
                except ValueError:
                    return {}
            if response.status_code in (404, 501) and not STRICT and _not_served(response):
                response.request_meta["name"] = f"[skipped] {name}"  # kept out of every SLO
                response.success()
                skipped[name] += 1
            elif response.status_code >= 500 or response.status_code == 0:
                response.failure(f"{response.status_code} from {name}")
            else:
                response.failure(f"unexpected {response.status_code} from {name}: {response.text[:120]}")
        return None

    def remember_courses(self) -> str | None:
        if not course_ids:
            page = self.call("GET", "/api/courses", name="/api/courses")
            course_ids.extend(item["id"] for item in (page or {}).get("items", []))
        return random.choice(course_ids) if course_ids else None


def _not_served(response: Any) -> bool:
    """The gateway (not a service) says no service answers this path, or the route is not built yet."""
    if response.status_code == 501:
        return True
    try:
        return "No service answers" in response.json().get("detail", "")
    except ValueError:
        return False


def _pool() -> tuple[str, list[dict[str, str]]] | None:
    if not POOL_FILE:
        return None
    pool = json.loads(Path(POOL_FILE).read_text())
    return str(pool["password"]), list(pool["accounts"])


POOL = _pool()
_next_account = itertools.count()


def _subject(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


class StudentUser(AcademyUser):
    weight = 9

    def on_start(self) -> None:
        super().on_start()
        self.enrollments: list[tuple[str, str]] = []
        if POOL is not None:
            password, accounts = POOL
            account = accounts[next(_next_account) % len(accounts)]
            self.credentials = {"email": account["email"], "password": password}
            self.user_id = account["user_id"]
            self.auth = {"Authorization": f"Bearer {account['token']}"}
            return
        email = f"load-{RUN_ID}-{uuid.uuid4().hex[:12]}@example.com"
        password = f"Mitochondria-{secrets.token_urlsafe(9)}-7"
        body = {"email": email, "password": password, "full_name": "Load Student", "grade": "12", "target_exam": "NEET"}
        self.call("POST", "/api/auth/register", name=f"{SETUP} /api/auth/register", json=body, expect=(201,))
        self.credentials = {"email": email, "password": password}
        tokens = self.call("POST", "/api/auth/login", name=f"{SETUP} /api/auth/login", json=self.credentials)
        self.user_id = _subject(tokens["access_token"]) if tokens else str(uuid.uuid4())
        if tokens:
            self.auth = {"Authorization": f"Bearer {tokens['access_token']}"}

    def sign_in_again(self) -> None:
        tokens = self.call("POST", "/api/auth/login", name="/api/auth/login", json=self.credentials)
        if tokens:
            self.auth = {"Authorization": f"Bearer {tokens['access_token']}"}

    if LOGIN_WEIGHT > 0:
        sign_in_again = task(LOGIN_WEIGHT)(sign_in_again)

    @task(14)
    def home(self) -> None:
        # The landing page: the student's name and grade, and the catalogue's first page.
        self.call("GET", "/api/users/profile", name="/api/users/profile")
        self.call("GET", "/api/courses", name="/api/courses")

    @task(8)
    def browse_catalogue(self) -> None:
        self.call("GET", f"/api/courses?offset={random.choice((0, 0, 0, 5))}", name="/api/courses")
        course_id = self.remember_courses()
        if course_id:
            course = self.call("GET", f"/api/courses/{course_id}", name="/api/courses/[id]")
            if course and course.get("lessons"):
                lesson_ids[course_id] = [lesson["id"] for lesson in course["lessons"]]

    @task(6)
    def search(self) -> None:
        self.call("GET", f"/api/courses/search?q={random.choice(SEARCH_TERMS)}", name="/api/courses/search?q=[q]")

    @task(3)
    def curriculum(self) -> None:
        self.call("GET", f"/api/curriculum/{random.choice(('11', '12', 'repeater'))}", name="/api/curriculum/[grade]")

    @task(3)
    def take_test(self) -> None:
        topic, attempt = random.choice(TOPICS), str(uuid.uuid4())
        paper = self.call(
            "GET",
            f"/api/questions/random?topic={topic}&count=10&attempt_id={attempt}",
            name="/api/questions/random?topic=[topic]",
        )
        if not paper or not paper.get("questions"):
            return
        answers = [
            {"question_id": q["id"], "choice": random.randrange(len(q["options"]))}
            if q.get("options")
            else {"question_id": q["id"], "text": "Genes are inherited in pairs and segregate during meiosis."}
            for q in paper["questions"]
        ]
        submission = {"attempt_id": attempt, "topic": topic, "answers": answers, "duration_seconds": 300}
        self.call("POST", "/api/assessments/submit", name="/api/assessments/submit", json=submission, expect=(201,))
        self.call("GET", f"/api/leaderboard/{topic}", name="/api/leaderboard/[topic]")

    @task(2)
    def leaderboard(self) -> None:
        self.call("GET", f"/api/leaderboard/{random.choice(TOPICS)}", name="/api/leaderboard/[topic]")

    @task(3)
    def track_progress(self) -> None:
        if not self.enrollments:
            self.call("GET", f"/api/enrollments/student/{self.user_id}", name="/api/enrollments/student/[id]")
            return
        enrollment_id, course_id = random.choice(self.enrollments)
        lessons = lesson_ids.get(course_id)
        if lessons:
            progress = {"lesson_id": random.choice(lessons), "completed": True, "time_spent_seconds": 1500}
            self.call(
                "PUT",
                f"/api/enrollments/{enrollment_id}/progress",
                name="/api/enrollments/[id]/progress",
                json=progress,
            )

    @task(2)
    def dashboard(self) -> None:
        self.call("GET", f"/api/analytics/dashboard/{self.user_id}", name="/api/analytics/dashboard/[id]")

    @task(1)
    def enrol_and_pay(self) -> None:
        course_id = self.remember_courses()
        if course_id is None:
            return
        started = self.call(
            "POST", "/api/enrollments", name="/api/enrollments", json={"course_id": course_id}, expect=(201, 409)
        )
        order = (started or {}).get("order") or {}
        order_id = order.get("id") or order.get("order_id")
        if not started or not order_id:
            return
        self.enrollments.append((str(started["enrollment_id"]), course_id))
        checkout = self.call(
            "POST",
            "/api/payments/sandbox/checkout",
            name="/api/payments/sandbox/checkout",
            json={"order_id": order_id, "outcome": "success"},
        )
        if checkout:
            fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")
            self.call(
                "POST", "/api/payments/verify", name="/api/payments/verify", json={k: checkout[k] for k in fields}
            )


def _admin_account() -> dict[str, str] | None:
    if not ACCOUNTS or not Path(ACCOUNTS).exists():
        return None
    admin: dict[str, str] = json.loads(Path(ACCOUNTS).read_text())["admin"]
    return admin


ADMIN = _admin_account()

if ADMIN is not None:

    class AdminUser(AcademyUser):
        """Looks after the academy: the catalogue, reports, message logs and the gateway's weights."""

        weight = 1

        def on_start(self) -> None:
            super().on_start()
            assert ADMIN is not None
            tokens = self.call("POST", "/api/auth/login", name=f"{SETUP} /api/auth/login", json=ADMIN)
            if tokens:
                self.auth = {"Authorization": f"Bearer {tokens['access_token']}"}

        @task(3)
        def catalogue(self) -> None:
            self.call("GET", "/api/courses?limit=50", name="/api/courses")

        @task(2)
        def performance_report(self) -> None:
            self.call("GET", "/api/analytics/reports/performance", name="/api/analytics/reports/performance")

        @task(2)
        def message_log(self) -> None:
            self.call("GET", "/api/communication/logs", name="/api/communication/logs")

        @task(1)
        def traffic_weights(self) -> None:
            self.call("GET", "/gateway/weights", name="/gateway/weights")


class ChosenShape(LoadTestShape):
    """The shape `cerebrum load run --shape` chose (LOAD_SHAPE, LOAD_USERS, LOAD_DURATION)."""

    def __init__(self) -> None:
        super().__init__()
        self.chosen = make_shape(
            os.environ.get("LOAD_SHAPE", "steady"),
            int(os.environ.get("LOAD_USERS", "10")),
            float(os.environ.get("LOAD_DURATION", "60")),
        )

    def tick(self) -> tuple[int, float] | None:
        return self.chosen.tick(self.get_run_time())
