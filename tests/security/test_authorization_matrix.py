"""Who may call what: every route of every service, for every kind of caller, directly and through the gateway.

The rules are in ``matrix.py``. A route the matrix does not classify fails
``test_every_route_is_classified``: a new route needs a rule before it ships.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from fastapi import FastAPI

from tests.security.embedded import SERVICE_PACKAGES, bearer
from tests.security.matrix import CALLERS, OPERATIONAL, RULES, Rule, account_of
from tests.security.world import Academy, expect


def declared_routes(name: str, app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) an app answers: its OpenAPI operations and the routes it hides from it."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    for method, path in hidden_routes(app):
        if path in (f"/openapi/{name}.json", f"/docs/{name}", f"/docs/{name}/redoc"):
            continue
        found.add(("*", path) if len(method) > 1 else (next(iter(method)), path))
    return found


def hidden_routes(app: FastAPI) -> Iterable[tuple[set[str], str]]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: routers are flattened into app.routes
        contexts: Iterable[Any] = app.routes
        pairs = ((getattr(r, "methods", None), getattr(r, "path", None), r) for r in contexts)
    else:
        pairs = (
            (getattr(c.original_route, "methods", None), c.path, c.original_route)
            for c in iter_route_contexts(app.routes)
        )
    for methods, path, route in pairs:
        if methods and path and not getattr(route, "include_in_schema", True):
            yield set(methods) - {"HEAD"}, path


def test_every_route_is_classified(academy: Academy) -> None:
    declared: set[tuple[str, str]] = set()
    for name, app in academy.apps.items():
        declared |= declared_routes(name, app)
    classified = {rule.key for rule in RULES} | OPERATIONAL
    assert not declared - classified, (
        f"routes with no rule in the authorization matrix: {sorted(declared - classified)}"
    )
    assert not classified - declared, f"rules for routes that no longer exist: {sorted(classified - declared)}"
    assert len({rule.key for rule in RULES}) == len(RULES), "one rule per route"


def test_every_service_is_served_by_the_embedded_platform(academy: Academy) -> None:
    missing = getattr(academy.platform, "missing_from_registry", [])
    assert not missing, (
        f"{missing} not in cerebrum/registry.py SERVICES: the embedded platform and its gateway do not serve them "
        f"(/api/... answers 502), though the architecture runs all seven services in one process"
    )
    assert set(SERVICE_PACKAGES) <= set(academy.apps)


async def send(a: Academy, rule: Rule, caller: str, *, via_gateway: bool) -> tuple[int, str, str]:
    call = await rule.make(a, caller)
    headers = dict(call.headers)
    token = call.token or (None if caller == "anonymous" else account_of(a, caller).access)
    if token is not None and caller != "anonymous":
        headers.update(bearer(token))
    path = ("/api" + call.path) if via_gateway else call.path
    response = await a.http.request(
        rule.method, path, json=call.json, content=call.content, params=call.params, headers=headers
    )
    return response.status_code, response.headers.get("content-type", ""), response.text


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.method} {r.path}" for r in RULES])
async def test_authorization(academy: Academy, rule: Rule) -> None:
    alice = academy.accounts["alice"]
    wrong = []
    for via_gateway in (False, True) if rule.gateway else (False,):
        for caller in CALLERS:
            status, content_type, body = await send(academy, rule, caller, via_gateway=via_gateway)
            where = "gateway" if via_gateway else "direct"
            if status not in rule.expected(caller):
                wrong.append(f"{where} {caller}: {status} (expected {rule.expected(caller)}) {body[:160]}")
            if status in (401, 403):
                if not content_type.startswith("application/problem+json"):
                    wrong.append(f"{where} {caller}: refusal is {content_type}, not problem+json")
                if alice.email in body:
                    wrong.append(f"{where} {caller}: the refusal shows alice's email")
    assert not wrong, f"{rule.method} {rule.path}:\n" + "\n".join(wrong)


# ---- beyond status codes: what another student sees and changes ---------------------------------


async def alices_view(a: Academy) -> dict[str, Any]:
    """Everything alice can read about herself, to compare before and after bob's attempts."""
    alice, records = a.accounts["alice"], a.records["alice"]
    h = alice.headers
    enrolments = expect(await a.http.get(f"/enrollments/student/{alice.user_id}", headers=h), 200)
    history = expect(await a.http.get(f"/payments/history/{alice.user_id}", headers=h), 200)
    return {
        "profile": expect(await a.http.get("/users/profile", headers=h), 200),
        "enrolment": expect(await a.http.get(f"/enrollments/{records.enrollment_id}/status", headers=h), 200)["status"],
        "enrolments": sorted((e["id"], e["status"], e["progress_percent"]) for e in enrolments["items"]),
        "orders": sorted((o["order_id"], o["status"]) for o in history["items"]),
        "methods": expect(await a.http.get("/payments/methods", headers=h), 200),
        "invoice": expect(await a.http.get(f"/billing/invoice/{records.invoice_id}", headers=h), 200),
        "result": expect(await a.http.get(f"/assessments/results/{records.result_id}", headers=h), 200)["id"],
        "preferences": expect(await a.http.get("/notifications/preferences", headers=h), 200),
        "notifications": len(await a.notifications(alice)),
        "dashboard": expect(await a.http.get(f"/analytics/dashboard/{alice.user_id}", headers=h), 200)["events"],
    }


async def settled_view(a: Academy, timeout: float = 30.0) -> dict[str, Any]:
    """Alice's view once her own earlier actions have finished landing (events, aggregates)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    view = await alices_view(a)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.5)  # longer than the aggregator's pass
        again = await alices_view(a)
        if again == view:
            return view
        view = again
    return view


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["direct", "gateway"])
async def test_another_student_neither_reads_nor_changes_alices_records(academy: Academy, prefix: str) -> None:
    a, alice, bob = academy, academy.accounts["alice"], academy.accounts["bob"]
    records = a.records["alice"]
    before = await settled_view(a)
    forged_identity = {"X-User-Id": str(alice.user_id), "X-User-Role": "admin"}
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/users/{alice.user_id}", None),
        ("GET", f"/enrollments/student/{alice.user_id}", None),
        ("GET", f"/enrollments/{records.enrollment_id}/status", None),
        (
            "PUT",
            f"/enrollments/{records.enrollment_id}/progress",
            {"lesson_id": a.lesson_ids[records.course_id][1], "completed": True},
        ),
        ("DELETE", f"/enrollments/{records.enrollment_id}", None),
        ("GET", f"/payments/history/{alice.user_id}", None),
        ("GET", f"/payments/orders/{records.paid_order_id}", None),
        ("POST", f"/payments/orders/{records.open_order_id}/cancel", None),
        ("GET", f"/billing/invoice/{records.invoice_id}", None),
        ("PUT", f"/subscriptions/{records.subscription_id}/cancel", None),
        ("GET", f"/assessments/results/{records.result_id}", None),
        ("GET", f"/notifications/{alice.user_id}", None),
        ("GET", f"/analytics/dashboard/{alice.user_id}", None),
        ("POST", "/analytics/events", a.learning_event(alice.user_id)),
    ]
    leaks = []
    for method, path, body in attempts:
        for extra in ({}, forged_identity):
            response = await a.http.request(method, prefix + path, json=body, headers={**bob.headers, **extra})
            if response.status_code != 403:
                leaks.append(
                    f"{method} {prefix}{path} {'(forged X-User-*) ' if extra else ''}-> {response.status_code}"
                )
    assert not leaks, "bob reached alice's records:\n" + "\n".join(leaks)

    # What bob may do to himself reaches nobody else.
    bob_methods = expect(await a.http.get(prefix + "/payments/methods", headers=bob.headers), 200)
    assert records.method_id not in {m["id"] for m in bob_methods}, "bob sees alice's stored payment method"
    bob_profile = await a.http.put(prefix + "/users/profile", json={"city": "Bobville"}, headers=bob.headers)
    assert expect(bob_profile, 200)["id"] == str(bob.user_id)
    assert await alices_view(a) == before, "alice's records changed after another student's refused requests"


@pytest.mark.parametrize(
    "path",
    [
        "/api/courses/%2e%2e/users/profile",
        "/api/courses/%2e%2e/communication/logs",
        "/api/communication/webhooks/%2e%2e/logs",
        "/api/communication/webhooks/%2e%2e/%2e%2e/payments/methods",
        "/api/payments/webhooks/razorpay/%2e%2e/%2e%2e/history/{user_id}",
        "/api/courses/..%2f..%2fusers/profile",
    ],
)
async def test_dot_segments_reach_no_private_route_anonymously(academy: Academy, path: str) -> None:
    """A public prefix (browsing, webhooks) must not lead the edge, or a service, into a private route."""
    path = path.format(user_id=academy.accounts["alice"].user_id)
    response = await academy.http.get(path)
    assert response.status_code in (400, 401, 404), f"{path} answered {response.status_code}: {response.text[:200]}"
    assert academy.accounts["alice"].email not in response.text
