"""Sends canary requests through the gateway as fresh students and splits them by ``x-served-by``.

The gateway keeps each student on one side of a prefix (a hash of their id), so the samples come
from many students. Once a student's side is known, further requests go from students on the side
with fewer samples, so that both sides end with about as many samples even at a 10% weight.
Anonymous requests would all come from one address and so all land on one side: every request
carries a student's token, public prefixes included.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field

import httpx

SYNTHETIC_HEADERS = {"X-Synthetic": "canary"}
# A request per prefix that any student may send; {user_id} and {uuid} are filled in.
DEFAULT_PATHS = {
    "auth": "/api/users/profile",
    "users": "/api/users/profile",
    "courses": "/api/courses",
    "curriculum": "/api/curriculum/11",
    "enrollments": "/api/enrollments/student/{user_id}",
    "payments": "/api/payments/history/{user_id}",
    "subscriptions": "/api/payments/history/{user_id}",
    "billing": "/api/payments/history/{user_id}",
    "analytics": "/api/analytics/dashboard/{user_id}",
    "notifications": "/api/notifications/{user_id}",
    "whatsapp": "/api/notifications/{user_id}",
    "email": "/api/notifications/{user_id}",
    "communication": "/api/notifications/preferences",
    "assessments": "/api/leaderboard/genetics",
    "questions": "/api/questions/random?topic=genetics&count=5&attempt_id={uuid}",
    "leaderboard": "/api/leaderboard/genetics",
}


@dataclass(frozen=True)
class Student:
    token: str
    user_id: str


@dataclass(frozen=True)
class Observation:
    side: str
    seconds: float
    status: int


@dataclass
class Samples:
    observations: list[Observation] = field(default_factory=list)
    students: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def latencies(self, side: str) -> list[float]:
        return [o.seconds for o in self.observations if o.side == side]

    def errors(self, side: str) -> tuple[int, int]:
        mine = [o for o in self.observations if o.side == side]
        return sum(o.status >= 500 for o in mine), len(mine)


class RegistrationRefused(RuntimeError):
    pass


def _subject(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def fresh_student(client: httpx.Client) -> Student:
    """Registers and logs in a new student through the gateway."""
    email = f"canary-{uuid.uuid4().hex[:16]}@example.com"
    password = f"Canary-{secrets.token_urlsafe(12)}-7"
    registered = client.post(
        "/api/auth/register",
        json={"email": email, "password": password, "full_name": "Canary Student"},
        headers=SYNTHETIC_HEADERS,
    )
    if registered.status_code not in (200, 201):
        raise RegistrationRefused(f"register answered {registered.status_code}")
    login = client.post("/api/auth/login", json={"email": email, "password": password}, headers=SYNTHETIC_HEADERS)
    if login.status_code != 200:
        raise RegistrationRefused(f"login answered {login.status_code}")
    token = login.json()["access_token"]
    return Student(token=token, user_id=_subject(token))


def _send(client: httpx.Client, path: str, student: Student, run_id: str) -> Observation:
    url = path.format(user_id=student.user_id, uuid=uuid.uuid4())
    headers = {
        **SYNTHETIC_HEADERS,
        "Authorization": f"Bearer {student.token}",
        "baggage": f"synthetic=true,load_test={run_id}",
    }
    started = time.perf_counter()
    try:
        response = client.get(url, headers=headers)
    except httpx.HTTPError:
        return Observation(side="unknown", seconds=time.perf_counter() - started, status=599)
    elapsed = time.perf_counter() - started
    return Observation(
        side=response.headers.get("x-served-by", "unknown"), seconds=elapsed, status=response.status_code
    )


def collect(
    client: httpx.Client,
    *,
    prefix: str,
    requests: int,
    max_students: int,
    path: str | None = None,
    min_students_per_side: int = 3,
) -> Samples:
    """Sends canary requests through the gateway's ``prefix`` until each side has ``requests // 2`` answers.

    Finding students on the small side costs requests that mostly land on the big one (at a 10%
    weight, about thirty for three students): those are extra, never taken from the small side's
    share, so that a run of bad luck in who lands where cannot leave it short of samples.
    """
    template = path or DEFAULT_PATHS.get(prefix, f"/api/{prefix}")
    run_id = f"canary-{uuid.uuid4().hex[:8]}"
    samples = Samples()
    by_side: dict[str, list[Student]] = {"service": [], "monolith": []}
    per_side = max(1, requests // 2)
    ceiling = requests + max_students  # however the answers fall, no more requests than this
    made = 0
    # First: fresh students, one request each, until both sides have a few (or no more may be made).
    while made < max_students and len(samples.observations) < ceiling:
        if all(len(group) >= min_students_per_side for group in by_side.values()):
            break
        try:
            student = fresh_student(client)
        except RegistrationRefused as exc:
            samples.notes.append(f"stopped making students after {made}: {exc}")
            break
        made += 1
        observation = _send(client, template, student, run_id)
        samples.observations.append(observation)
        by_side.setdefault(observation.side, []).append(student)
    # Then: the side with fewer samples goes next, round robin over its students.
    turns = {side: 0 for side in by_side}
    while len(samples.observations) < ceiling:
        short = [s for s in ("service", "monolith") if by_side[s] and len(samples.latencies(s)) < per_side]
        if not short:
            break
        side = min(short, key=lambda s: len(samples.latencies(s)))
        student = by_side[side][turns[side] % len(by_side[side])]
        turns[side] += 1
        samples.observations.append(_send(client, template, student, run_id))
    samples.students = {side: len(group) for side, group in by_side.items()}
    return samples
