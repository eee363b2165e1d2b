"""Comparing two answers: what counts as a difference, and what the rules and the learned noise leave out."""

from __future__ import annotations

import httpx
import orjson
from fastapi import APIRouter
from prometheus_client import REGISTRY

from observability import ObservabilityMiddleware
from services.gateway.shadow_diff import Answer, Noise, RouteRules, ShadowRules, compare, route_of
from services.gateway.shadow_ledger import RouteLedger
from services.kit.app import new_fastapi


def answer(body: object, status: int = 200, **headers: str) -> Answer:
    return Answer(status, {"content-type": "application/json", **headers}, orjson.dumps(body))


def fields(a: Answer, b: Answer, rules: RouteRules | None = None, noise: Noise | None = None) -> list[str]:
    return [d.field for d in compare(a, b, rules or RouteRules(), noise)]


def test_status_headers_that_matter_and_body_fields_are_compared_by_name() -> None:
    primary = answer({"course": {"price": 4999, "tags": ["a"]}}, date="Mon", location="/a")
    other = answer({"course": {"price": 5999, "tags": ["a", "b"]}}, status=201, date="Tue", location="/b")
    assert fields(primary, other) == ["status", "header.location", "body.course.price", "body.course.tags[#]"]
    missing = answer({"course": {}})
    assert [
        (d.field, d.primary, d.candidate) for d in compare(missing, answer({"course": {"id": 1}}), RouteRules())
    ] == [("body.course.id", "<absent>", 1)]


def test_numbers_within_the_route_tolerance_are_equal_and_ignored_fields_never_compared() -> None:
    rules = RouteRules.of({"absolute_tolerance": 0.01, "ignore": ["body.*_at"]})
    a, b = answer({"score": 81.004, "cached_at": "1"}), answer({"score": 81.0, "cached_at": "2"})
    assert fields(a, b, rules) == []
    assert fields(a, answer({"score": 81.1, "cached_at": "2"}), rules) == ["body.score"]
    assert fields(answer({"ok": True}), answer({"ok": 1})) == ["body.ok"], "a bool is not a number"


def test_noise_learned_from_the_same_side_leaves_ids_timestamps_and_set_order_out() -> None:
    noise = Noise()
    first = answer({"id": "a1", "at": "10:00", "tags": ["x", "y", "z"], "items": [{"n": 1, "req": "q1"}]})
    again = answer({"id": "a1", "at": "10:01", "tags": ["z", "x", "y"], "items": [{"n": 1, "req": "q2"}]})
    assert noise.learn(first, again, RouteRules()) == {"body.at", "body.items[*].req"}
    assert noise.unordered == {"body.tags"}
    candidate = answer({"id": "a1", "at": "11:00", "tags": ["y", "z", "x"], "items": [{"n": 2, "req": "q9"}]})
    assert fields(first, candidate, noise=noise) == ["body.items[*].n"]
    assert fields(first, answer({"id": "b2", "at": "", "tags": ["x", "y", "w"], "items": [{"n": 1}]}), noise=noise) == [
        "body.id",
        "body.tags[*]",
    ]


def test_text_bodies_are_compared_whole_and_routes_fold_ids() -> None:
    text = Answer(200, {"content-type": "text/plain"}, b"hello")
    assert fields(text, Answer(200, {"content-type": "text/plain"}, b"hullo")) == ["body"]
    assert route_of("GET", "/courses/5b0c0a8e-65a1-4c49-9a57-0b3c2f6a9e11/lessons/42?x=1") == (
        "GET /courses/{id}/lessons/{id}"
    )
    rules = ShadowRules.of({"routes": {"courses": {"read_only": True}, "GET /courses/{id}": {"ignore": ["body.x"]}}})
    assert rules.for_route("courses", "POST /courses/search").read_only
    assert rules.for_route("courses", "GET /courses/{id}").ignore == ("body.x",)
    assert not rules.for_route("users", "GET /users/me").read_only


async def test_a_shadow_request_is_recorded_apart_from_the_red_metrics() -> None:
    app = new_fastapi()
    router = APIRouter()

    @router.get("/lessons/{lesson_id}")
    async def lesson(lesson_id: int) -> dict[str, int]:
        return {"id": lesson_id}

    app.include_router(router)
    app.add_middleware(ObservabilityMiddleware, service="shadowside")
    labels = {"service": "shadowside", "route": "/lessons/{lesson_id}", "method": "GET", "status": "200"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/lessons/1")
        await client.get("/lessons/2", headers={"X-Cerebrum-Shadow": "1"})
        await client.get("/lessons/3", headers={"X-Cerebrum-Shadow": "1"})
    assert REGISTRY.get_sample_value("http_requests_total", labels) == 1
    assert REGISTRY.get_sample_value("http_shadow_requests_total", labels) == 2


def test_an_example_pair_is_redacted_as_a_log_line_is() -> None:
    ledger = RouteLedger("users", "GET /users/{id}")
    primary = answer({"email": "alice@example.com", "password": "hunter2hunter2", "city": "Pune"})
    other = answer({"email": "alice@example.org", "password": "other-secret", "city": "Delhi"})
    ledger.tally(compare(primary, other, RouteRules()), served_by="monolith", other="service")
    examples = {f["field"]: f["example"] for f in ledger.summary()["top_fields"]}
    assert examples["body.email"] == {"monolith": "a***@example.com", "service": "a***@example.org"}
    assert examples["body.password"] == {"monolith": "[REDACTED]", "service": "[REDACTED]"}
    assert examples["body.city"] == {"monolith": "Pune", "service": "Delhi"}
    assert ledger.summary()["diff_rate"] == 1.0
