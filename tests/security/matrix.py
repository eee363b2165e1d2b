"""The authorization matrix: for every route, what each kind of caller gets, and the request that proves it.

Callers: ``anonymous`` (no token), ``student`` (alice, who owns the records the route names),
``other`` (bob, another student, naming alice's records) and ``admin``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from services.communication.webhooks import SIGNATURE_HEADER
from tests.security.world import Academy, Account, expect

CALLERS = ("anonymous", "other", "student", "admin")  # refusals first: a positive call may change state
OK = range(200, 300)
Outcome = range | tuple[int, ...]


@dataclass(frozen=True)
class Call:
    """One concrete request of a rule, for one caller."""

    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    """Sent instead of the caller's usual token (a fresh session, a throwaway account)."""


Make = Callable[[Academy, str], Awaitable[Call]]


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    """The route's template, exactly as the service declares it."""
    anonymous: Outcome
    student: Outcome
    other: Outcome
    admin: Outcome
    make: Make
    gateway: bool = True
    """Also reachable as /api<path> through the gateway."""

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def expected(self, caller: str) -> Outcome:
        outcome: Outcome = getattr(self, caller)
        return outcome


def public(method: str, path: str, make: Make, **kw: Any) -> Rule:
    return Rule(method, path, OK, OK, OK, OK, make, **kw)


def own(method: str, path: str, make: Make, **kw: Any) -> Rule:
    """Acts on the caller's own records only (nothing in the request names whose)."""
    return Rule(method, path, (401,), OK, OK, OK, make, **kw)


def owned(method: str, path: str, make: Make, **kw: Any) -> Rule:
    """Names a student's record: the owner and admins may, another student may not."""
    return Rule(method, path, (401,), OK, (403,), OK, make, **kw)


def admins(method: str, path: str, make: Make, **kw: Any) -> Rule:
    return Rule(method, path, (401,), (403,), (403,), OK, make, **kw)


def signed(method: str, path: str, make: Make, **kw: Any) -> Rule:
    """A provider webhook: a token is no substitute for its signature, so a forged one is refused for all."""
    return Rule(method, path, (401,), (401,), (401,), (401,), make, **kw)


# ---- what each rule sends -------------------------------------------------------------------------


def ids(a: Academy) -> dict[str, str]:
    alice, records = a.accounts["alice"], a.records["alice"]
    course = records.course_id
    return {
        "user_id": str(alice.user_id),
        "enrollment_id": records.enrollment_id,
        "order_id": records.paid_order_id,
        "open_order_id": records.open_order_id,
        "invoice_id": records.invoice_id,
        "subscription_id": records.subscription_id,
        "result_id": records.result_id,
        "course_id": course,
        "lesson_id": a.lesson_ids[course][0],
        "file_id": a.file_id,
        "question_id": a.question_id,
    }


def at(path: str, **kw: Any) -> Make:
    """The path with alice's ids filled in; the same request for every caller."""

    async def make(a: Academy, caller: str) -> Call:
        known = ids(a)
        body = kw.get("json")
        if isinstance(body, dict):
            body = {k: v.format(**known) if isinstance(v, str) else v for k, v in body.items()}
        return Call(
            path.format(**known),
            json=body,
            params=kw.get("params"),
            headers=kw.get("headers", {}),
        )

    return make


def account_of(a: Academy, caller: str) -> Account:
    return a.accounts[{"anonymous": "alice", "student": "alice", "other": "bob", "admin": "admin"}[caller]]


async def register_body(a: Academy, caller: str) -> Call:
    email = f"newcomer.{uuid.uuid4().hex[:10]}@example.com"
    return Call("/auth/register", json={"email": email, "password": "Ribosome-Factory-91", "full_name": "New Comer"})


async def login_body(a: Academy, caller: str) -> Call:
    account = account_of(a, caller)
    return Call("/auth/login", json={"email": account.email, "password": account.password})


async def refresh_body(a: Academy, caller: str) -> Call:
    session = await a.fresh_session(account_of(a, caller))
    return Call("/auth/refresh", json={"refresh_token": session.refresh})


async def logout_fresh_session(a: Academy, caller: str) -> Call:
    session = await a.fresh_session(account_of(a, caller))
    return Call("/auth/logout", token=session.access)


async def delete_throwaway_account(a: Academy, caller: str) -> Call:
    throwaway = await a.register(f"throwaway{a.serial()}", role="admin" if caller == "admin" else "student")
    return Call("/users/account", token=throwaway.access)


async def new_course_body(a: Academy, caller: str) -> Call:
    n = a.serial()
    course = {"slug": f"matrix-{n}-{uuid.uuid4().hex[:6]}", "title": f"Matrix {n}", "subject": "biology"}
    return Call("/courses", json=course | {"grade": "11", "price_paise": 0, "capacity": 10})


async def upload(a: Academy, caller: str) -> Call:
    course = ids(a)["course_id"]
    return Call(
        f"/courses/{course}/lessons/{a.lesson_ids[course][0]}/files",
        content=b"plain notes on osmosis",
        headers={"Content-Type": "text/plain", "X-Filename": "osmosis.txt"},
    )


async def reserve(a: Academy, caller: str) -> Call:
    body = {"reservation_id": str(uuid.uuid4()), "student_id": str(a.accounts["alice"].user_id)}
    return Call(f"/courses/{ids(a)['course_id']}/seats/reserve", json=body)


async def release(a: Academy, caller: str) -> Call:
    return Call(f"/courses/{ids(a)['course_id']}/seats/release", json={"reservation_id": str(uuid.uuid4())})


async def enrol_in_new_course(a: Academy, caller: str) -> Call:
    return Call("/enrollments", json={"course_id": await a.new_course()})


async def cancel_enrolment(a: Academy, caller: str) -> Call:
    if caller in ("student", "admin"):  # allowed: cancel a fresh enrolment of alice's, not her paid one
        started = await a.enrol(a.accounts["alice"])
        return Call(f"/enrollments/{started['enrollment_id']}")
    return Call(f"/enrollments/{ids(a)['enrollment_id']}")


async def progress(a: Academy, caller: str) -> Call:
    body = {"lesson_id": ids(a)["lesson_id"], "completed": True, "time_spent_seconds": 60}
    return Call(f"/enrollments/{ids(a)['enrollment_id']}/progress", json=body)


async def create_order_for_alice(a: Academy, caller: str) -> Call:
    body = {"user_id": ids(a)["user_id"], "amount_paise": 9_900, "description": "Mock test series"}
    return Call("/payments/create-order", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


async def cancel_order(a: Academy, caller: str) -> Call:
    if caller in ("student", "admin"):
        return Call(f"/payments/orders/{await a.open_order(a.accounts['alice'])}/cancel")
    return Call(f"/payments/orders/{ids(a)['open_order_id']}/cancel")


async def refund_alices_order(a: Academy, caller: str) -> Call:
    body = {"reason": "matrix"}
    if caller == "admin":  # allowed: refund a fresh paid order of alice's, not the one her enrolment holds
        order_id = await a.open_order(a.accounts["alice"])
        await a.pay(a.accounts["alice"], order_id)
        return Call(f"/payments/orders/{order_id}/refund", json=body)
    return Call(f"/payments/orders/{ids(a)['order_id']}/refund", json=body)


async def verify_alices_checkout(a: Academy, caller: str) -> Call:
    checkout = a.records["alice"].checkout
    return Call(
        "/payments/verify",
        json={k: checkout[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")},
    )


async def replay_alices_webhook(a: Academy, caller: str) -> Call:
    webhook = a.records["alice"].checkout["webhook"]
    return Call("/payments/webhooks/razorpay", content=webhook["body"].encode(), headers=webhook["headers"])


async def checkout_alices_order(a: Academy, caller: str) -> Call:
    return Call("/payments/sandbox/checkout", json={"order_id": ids(a)["open_order_id"], "outcome": "failure"})


async def save_method(a: Academy, caller: str) -> Call:
    body = {"kind": "upi", "token": f"tok_upi_{uuid.uuid4().hex[:12]}", "brand": "upi"}
    return Call("/payments/methods", json=body)


async def new_plan(a: Academy, caller: str) -> Call:
    body = {"code": f"matrix-plan-{a.serial()}", "name": "Matrix plan", "amount_paise": 19_900, "period": "monthly"}
    return Call("/subscriptions/plans", json=body)


async def retire_new_plan(a: Academy, caller: str) -> Call:
    code = f"matrix-retired-{a.serial()}"
    plan = {"code": code, "name": "Matrix plan", "amount_paise": 19_900, "period": "yearly"}
    expect(await a.http.post("/subscriptions/plans", json=plan, headers=a.accounts["admin"].headers), 201)
    return Call(f"/subscriptions/plans/{code}/retire")


async def subscribe_alice(a: Academy, caller: str) -> Call:
    body = {"user_id": ids(a)["user_id"], "plan": "neet-monthly"}
    return Call("/subscriptions/create", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


async def new_template(a: Academy, caller: str) -> Call:
    body = {"name": f"security_notice_{a.serial()}", "channel": "in_app", "body": "Hello {{ name }}"}
    return Call("/communication/templates", json=body)


def forged_webhook(path: str) -> Make:
    async def make(a: Academy, caller: str) -> Call:
        body = b'{"events": [{"provider_message_id": "msg-1", "status": "delivered"}]}'
        return Call(path, content=body, headers={SIGNATURE_HEADER: f"t={int(uuid.uuid1().time // 10**7)},v1=00"})

    return make


async def draw_questions(a: Academy, caller: str) -> Call:
    return Call("/questions/random", params={"topic": "genetics", "count": 2, "attempt_id": str(uuid.uuid4())})


async def new_question(a: Academy, caller: str) -> Call:
    body = {
        "topic": "cell-biology",
        "difficulty": 2,
        "kind": "mcq",
        "stem": f"Which organelle makes ATP? ({a.serial()})",
        "options": ["Mitochondrion", "Golgi body", "Lysosome", "Vacuole"],
        "correct_option": 0,
    }
    return Call("/questions/create", json=body)


async def lesson_file(a: Academy, caller: str) -> Call:
    """A file of the course alice is enrolled in; the "other" caller is a new student with no enrolment."""
    call = await at("/courses/{course_id}/lessons/{lesson_id}/files/{file_id}")(a, caller)
    if caller == "other":
        unenrolled = await a.register(f"unenrolled{a.serial()}")
        return replace(call, token=unenrolled.access)
    return call


async def submit_attempt(a: Academy, caller: str) -> Call:
    """An answer to a question the caller's own attempt drew (anonymous is refused before that matters)."""
    attempt, answer = str(uuid.uuid4()), {"question_id": a.question_id, "choice": 0}
    if caller != "anonymous":
        params: dict[str, str | int] = {"topic": "genetics", "count": 1, "attempt_id": attempt}
        drawn = await a.http.get("/questions/random", params=params, headers=account_of(a, caller).headers)
        question = expect(drawn, 200)["questions"][0]
        reply: dict[str, Any] = {"choice": 0} if question["kind"] == "mcq" else {"text": "Alleles segregate"}
        answer = {"question_id": question["id"], **reply}
    body = {"attempt_id": attempt, "topic": "genetics", "answers": [answer], "duration_seconds": 30}
    return Call("/assessments/submit", json=body)


async def alices_event(a: Academy, caller: str) -> Call:
    return Call("/analytics/events", json=a.learning_event(a.accounts["alice"].user_id))


ALICE = {"user_id": "{user_id}"}
RULES: list[Rule] = [
    # users
    public("POST", "/auth/register", register_body),
    public("POST", "/auth/login", login_body),
    public("POST", "/auth/refresh", refresh_body),
    own("POST", "/auth/logout", logout_fresh_session),
    own("GET", "/users/profile", at("/users/profile")),
    own("PUT", "/users/profile", at("/users/profile", json={"school": "Security Senior Secondary"})),
    own("DELETE", "/users/account", delete_throwaway_account),
    owned("GET", "/users/{user_id}", at("/users/{user_id}")),
    # courses
    public("GET", "/courses", at("/courses")),
    public("GET", "/courses/search", at("/courses/search", params={"q": "cell"})),
    public("GET", "/courses/{course_id}", at("/courses/{course_id}")),
    admins("POST", "/courses", new_course_body),
    admins("PUT", "/courses/{course_id}", at("/courses/{course_id}", json={"description": "Reviewed"})),
    public("GET", "/curriculum/{grade}", at("/curriculum/11")),
    admins("POST", "/courses/{course_id}/lessons/{lesson_id}/files", upload),
    # Alice is enrolled (confirmed) in the course; "other" is a student enrolled in nothing.
    Rule("GET", "/courses/{course_id}/lessons/{lesson_id}/files/{file_id}", (401,), OK, (403,), OK, lesson_file),
    admins("POST", "/courses/{course_id}/seats/reserve", reserve),
    admins("POST", "/courses/{course_id}/seats/release", release),
    # enrollments
    own("POST", "/enrollments", enrol_in_new_course),
    owned("GET", "/enrollments/student/{user_id}", at("/enrollments/student/{user_id}")),
    owned("GET", "/enrollments/{enrollment_id}/status", at("/enrollments/{enrollment_id}/status")),
    # Progress is the learner's own act: not even an admin records it for them.
    Rule("PUT", "/enrollments/{enrollment_id}/progress", (401,), OK, (403,), (403,), progress),
    owned("DELETE", "/enrollments/{enrollment_id}", cancel_enrolment),
    # payments
    owned("POST", "/payments/create-order", create_order_for_alice),
    owned("GET", "/payments/orders/{order_id}", at("/payments/orders/{order_id}")),
    owned("POST", "/payments/orders/{order_id}/cancel", cancel_order),
    # A student's refund comes with giving the place up (DELETE /enrollments/{id}); services and admins refund.
    admins("POST", "/payments/orders/{order_id}/refund", refund_alices_order),
    owned("POST", "/payments/verify", verify_alices_checkout),
    public("POST", "/payments/webhooks/{source}", replay_alices_webhook),
    owned("POST", "/payments/sandbox/checkout", checkout_alices_order),
    owned("GET", "/payments/history/{user_id}", at("/payments/history/{user_id}")),
    own("POST", "/payments/methods", save_method),
    own("GET", "/payments/methods", at("/payments/methods")),
    public("GET", "/subscriptions/plans", at("/subscriptions/plans")),
    admins("GET", "/subscriptions/plans/all", at("/subscriptions/plans/all")),
    admins("POST", "/subscriptions/plans", new_plan),
    admins("PATCH", "/subscriptions/plans/{code}", at("/subscriptions/plans/neet-yearly", json={"name": "NEET, 1 yr"})),
    admins("POST", "/subscriptions/plans/{code}/retire", retire_new_plan),
    owned("POST", "/subscriptions/create", subscribe_alice),
    owned("PUT", "/subscriptions/{subscription_id}/cancel", at("/subscriptions/{subscription_id}/cancel")),
    owned("GET", "/billing/invoice/{invoice_id}", at("/billing/invoice/{invoice_id}")),
    # communication
    admins(
        "POST",
        "/notifications/send",
        at("/notifications/send", json={**ALICE, "template": "welcome", "variables": {"name": "Alice"}}),
    ),
    admins(
        "POST",
        "/email/send",
        at("/email/send", json={**ALICE, "subject": "Timetable", "body": "Classes start at 9."}),
    ),
    admins("POST", "/whatsapp/send-message", at("/whatsapp/send-message", json={"to": "+919812345678", "body": "Hi"})),
    own("GET", "/notifications/preferences", at("/notifications/preferences")),
    own("PUT", "/notifications/preferences", at("/notifications/preferences", json={"sms": False})),
    owned("GET", "/notifications/{user_id}", at("/notifications/{user_id}")),
    admins("GET", "/communication/logs", at("/communication/logs")),
    admins("POST", "/communication/templates", new_template),
    admins("GET", "/communication/templates", at("/communication/templates")),
    signed("POST", "/communication/webhooks/{provider}", forged_webhook("/communication/webhooks/smtp")),
    signed(
        "POST", "/communication/webhooks/{provider}/inbound", forged_webhook("/communication/webhooks/twilio/inbound")
    ),
    # assessments
    own("GET", "/questions/topics", at("/questions/topics")),
    own("GET", "/questions/random", draw_questions),
    admins("POST", "/questions/create", new_question),
    admins("POST", "/questions/{question_id}/variants", at("/questions/{question_id}/variants")),
    own("POST", "/assessments/submit", submit_attempt),
    owned("GET", "/assessments/results/{result_id}", at("/assessments/results/{result_id}")),
    own("GET", "/leaderboard/{category}", at("/leaderboard/overall")),
    # analytics
    owned("POST", "/analytics/events", alices_event),
    own(
        "POST", "/analytics/track-activity", at("/analytics/track-activity", json={"seconds": 30, "activity": "video"})
    ),
    owned("GET", "/analytics/dashboard/{user_id}", at("/analytics/dashboard/{user_id}")),
    admins("GET", "/analytics/reports/performance", at("/analytics/reports/performance")),
    admins("GET", "/analytics/metrics/engagement", at("/analytics/metrics/engagement")),
    admins("GET", "/analytics/live", at("/analytics/live", params={"max_events": 1})),
    # the gateway's own administration (not forwarded: it is the gateway)
    admins("GET", "/gateway/weights", at("/gateway/weights"), gateway=False),
    admins("PUT", "/gateway/weights/{prefix}", at("/gateway/weights/courses", json={"weight": 100}), gateway=False),
    admins("GET", "/gateway/shadow", at("/gateway/shadow"), gateway=False),
    admins("PUT", "/gateway/shadow/{prefix}", at("/gateway/shadow/courses", json={"percent": 0}), gateway=False),
    admins("GET", "/gateway/shadow/report", at("/gateway/shadow/report"), gateway=False),
]

# Served to anyone by design, outside every service's OpenAPI: probes, metrics, API documents, and
# the gateway's catch-all (whose every forwarded route is a rule above).
OPERATIONAL = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
    ("*", "/api/{path:path}"),
}
