"""Students for the experiments: register, enrol, pay, through the gateway as a browser would.

The load runs in threads beside the experiment and writes down what the platform *accepted*
(an enrolment answered 201, a payment verified) in the experiment's folder, so that the
reconciliation probe can later check that every accepted thing was delivered, exactly once.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.state import append

PASSWORD = "Chlorophyll-Chaos-42"


@dataclass
class Student:
    email: str
    user_id: str
    token: str
    courses_left: list[str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """The gateway's API, as one student's browser uses it."""

    def __init__(self, gateway_url: str, *, timeout: float = 15.0) -> None:
        self.http = httpx.Client(base_url=gateway_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def courses(self) -> list[str]:
        reply = self.http.get("/api/courses", params={"limit": 50})
        reply.raise_for_status()
        return [item["id"] for item in reply.json()["items"]]

    def new_student(self, courses: list[str]) -> Student:
        email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Chaos Student"}
        registered = self.http.post("/api/auth/register", json=body)
        registered.raise_for_status()
        login = self.http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        shuffled = list(courses)
        random.shuffle(shuffled)
        return Student(email, registered.json()["id"], login.json()["access_token"], shuffled)

    def enrol(self, student: Student, course_id: str) -> httpx.Response:
        return self.http.post("/api/enrollments", json={"course_id": course_id}, headers=student.auth)

    def checkout(self, student: Student, order_id: str, outcome: str = "success") -> httpx.Response:
        return self.http.post(
            "/api/payments/sandbox/checkout", json={"order_id": order_id, "outcome": outcome}, headers=student.auth
        )

    def verify(self, student: Student, checkout: dict[str, Any]) -> httpx.Response:
        fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")
        return self.http.post("/api/payments/verify", json={k: checkout[k] for k in fields}, headers=student.auth)

    def webhook(self, webhook: dict[str, Any]) -> httpx.Response:
        headers = {k: v for k, v in webhook["headers"].items() if k.lower() != "content-length"}
        return self.http.post("/api/payments/webhooks/razorpay", content=webhook["body"].encode(), headers=headers)


@dataclass
class Outcome:
    at: float
    step: str
    status: int
    seconds: float


@dataclass
class Load:
    """Students enrolling (and paying, for a share of them) at a steady pace, until stopped."""

    gateway_url: str
    folder: Path
    workers: int = 3
    pause: float = 0.2
    pay_share: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        api = Api(self.gateway_url)
        try:
            self.course_ids = api.courses()
        finally:
            api.close()
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"chaos-load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        return self.summary()

    def _note(self, step: str, status: int, started: float) -> None:
        with self._lock:
            self.outcomes.append(Outcome(time.time(), step, status, time.perf_counter() - started))

    def _call(self, step: str, send: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            reply: httpx.Response = send()
        except httpx.HTTPError as exc:
            self._note(step, 0, started)
            with self._lock:
                self.errors[f"{step}: {type(exc).__name__}"] += 1
            return None
        self._note(step, reply.status_code, started)
        return reply

    def _work(self) -> None:
        api = Api(self.gateway_url)
        student: Student | None = None
        try:
            while not self._stop.is_set():
                if student is None or not student.courses_left:
                    student = self._call_student(api)
                    if student is None:
                        self._stop.wait(self.pause * 5)
                        continue
                self._enrol_once(api, student)
                self._stop.wait(self.pause)
        finally:
            api.close()

    def _call_student(self, api: Api) -> Student | None:
        started = time.perf_counter()
        try:
            student = api.new_student(self.course_ids)
        except httpx.HTTPError as exc:
            self._note("register", getattr(getattr(exc, "response", None), "status_code", 0), started)
            return None
        self._note("register", 201, started)
        return student

    def _enrol_once(self, api: Api, student: Student) -> None:
        course_id = student.courses_left.pop()
        reply = self._call("enrol", lambda: api.enrol(student, course_id))
        if reply is None or reply.status_code != 201:
            return
        body = reply.json()
        order = body.get("order") or {}
        record = {
            "at": time.time(),
            "enrollment_id": body["enrollment_id"],
            "saga_id": body["saga_id"],
            "order_id": order.get("order_id"),
            "user_id": student.user_id,
            "course_id": course_id,
        }
        append(self.folder, "accepted.jsonl", record)
        if order.get("order_id") and random.random() < self.pay_share:
            self._pay(api, student, record)

    def _pay(self, api: Api, student: Student, record: dict[str, Any]) -> None:
        checkout = self._call("checkout", lambda: api.checkout(student, record["order_id"]))
        if checkout is None or checkout.status_code != 200:
            return
        verified = self._call("verify", lambda: api.verify(student, checkout.json()))
        if verified is not None and verified.status_code == 200:
            payment = verified.json()
            append(
                self.folder,
                "paid.jsonl",
                {**record, "paid_at": time.time(), "payment_id": payment.get("payment_id")},
            )

    def summary(self, since: float | None = None) -> dict[str, Any]:
        with self._lock:
            outcomes = [o for o in self.outcomes if since is None or o.at >= since]
            errors = dict(self.errors)
        by_step: dict[str, Counter[str]] = {}
        for outcome in outcomes:
            by_step.setdefault(outcome.step, Counter())[str(outcome.status)] += 1
        return {"requests": len(outcomes), "by_step": {k: dict(v) for k, v in by_step.items()}, "errors": errors}

    def latencies(self, step: str, status: int, since: float) -> list[float]:
        with self._lock:
            return sorted(o.seconds for o in self.outcomes if o.step == step and o.status == status and o.at >= since)


@dataclass
class Traffic:
    """One student sending one request over and over (``workers`` at a time) until stopped."""

    gateway_url: str
    path: str
    workers: int = 2
    pause: float = 0.05
    method: str = "GET"
    body: dict[str, Any] | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        api = Api(self.gateway_url)
        try:
            self.student = api.new_student([])
        finally:
            api.close()
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"chaos-traffic-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        api = Api(self.gateway_url, timeout=10)
        try:
            while not self._stop.is_set():
                try:
                    sent = api.http.request(self.method, self.path, json=self.body, headers=self.student.auth)
                    status = sent.status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.statuses[status] += 1
                self._stop.wait(self.pause)
        finally:
            api.close()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        with self._lock:
            return {str(k): v for k, v in sorted(self.statuses.items())}
