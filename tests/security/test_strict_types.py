"""Every JSON body of the public API is read as strictly as JSON is typed.

Walks each write operation (POST, PUT, PATCH with a JSON body) of the merged OpenAPI that the
gateway publishes, and of the gateway's own, and sends each numeric or boolean field (nested ones
too) as ``"12"``, ``true`` or ``1.5``, and each body with an unknown field: every one must be a 422
problem naming that field, with the path the client called as its ``instance``, and change
nothing in any service's database.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from observability.problems import PROBLEM_JSON, PROBLEM_TYPE_BASE
from services.kit.auth import TokenIssuer
from services.users.settings import UsersSettings
from tests.security.embedded import bearer, running_platform

# Background work that would write while the tables are compared: pushed out of the run.
QUIET = {
    "aggregator_interval_seconds": 3600,
    "dispatcher_interval_seconds": 3600,
    "saga_recovery_interval_seconds": 3600,
    "order_expiry_interval_seconds": 3600,
    "maintenance_interval_seconds": 3600,
}
# Provider webhooks take the provider's own format, signed; the signature is checked on the raw bytes.
NOT_OURS = ("/webhooks/",)
WRONG = {
    "integer": ["12", True, 1.5],
    "number": ["12", True],
    "boolean": ["true", 1],
}
UNKNOWN_FIELD = "surprise_field"


@dataclass
class Operation:
    method: str
    path: str
    schema: dict[str, Any]
    components: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass
class Api:
    client: httpx.AsyncClient
    data_dir: Path
    admin: dict[str, str]
    student: dict[str, str]
    operations: list[Operation]


def digest(data_dir: Path) -> dict[str, str]:
    """A digest of every table of every service's database, read straight from disk."""
    digests = {}
    for path in sorted(data_dir.glob("*.db")):
        db = sqlite3.connect(path, timeout=10)
        try:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                rows = sorted(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
                digests[f"{path.stem}.{table}"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        finally:
            db.close()
    return digests


def quiesce(data_dir: Path, timeout: float = 10.0) -> None:
    """Waits until the freshly started platform's start-up work stops writing."""
    deadline = time.monotonic() + timeout
    last = digest(data_dir)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = digest(data_dir)
        if now == last:
            return
        last = now


def write_operations(document: dict[str, Any]) -> Iterator[Operation]:
    components = document.get("components", {}).get("schemas", {})
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch") or any(part in path for part in NOT_OURS):
                continue
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                yield Operation(method, path, content["application/json"]["schema"], components)


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The schema itself: references followed, ``null`` alternatives dropped, a oneOf's first form."""
    while True:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema or "oneOf" in schema:
            forms = [s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"]
            schema = forms[0]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def typed_fields(schema: dict[str, Any], components: dict[str, Any], at: tuple[str | int, ...] = ()) -> Iterator[
    tuple[tuple[str | int, ...], str]
]:
    """Each numeric or boolean field of a body, nested objects and lists of them included, with its type."""
    schema = resolve(schema, components)
    if schema.get("type") == "array" and "items" in schema:
        yield from typed_fields(schema["items"], components, (*at, 0))
    for name, field in schema.get("properties", {}).items():
        field = resolve(field, components)
        kind = field.get("type")
        if kind in WRONG:
            yield (*at, name), kind
        elif kind in ("object", "array"):
            yield from typed_fields(field, components, (*at, name))


def body_with(location: tuple[str | int, ...], value: Any) -> Any:
    """The smallest body that puts value at location (``("lessons", 0, "duration_minutes")``)."""
    for step in reversed(location):
        value = [value] if isinstance(step, int) else {step: value}
    return value


def concrete(path: str) -> str:
    # The body is validated before any path parameter is looked up: any well-formed value will do.
    for name in ("prefix", "provider", "source"):
        path = path.replace("{" + name + "}", "courses")
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1 :]
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(_embedded_only: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    data_dir = tmp_path_factory.mktemp("strict")
    async with running_platform(data_dir, **QUIET) as (_platform, client):
        issuer = TokenIssuer(UsersSettings(data_dir=data_dir))
        admin = bearer(issuer.issue(user_id=uuid.uuid4(), role="admin", session_id=None))
        student = bearer(issuer.issue(user_id=uuid.uuid4(), role="student", session_id=None))
        operations = []
        for url in ("/api/openapi.json", "/openapi/gateway.json"):
            document = (await client.get(url, headers=admin)).json()
            operations += list(write_operations(document))
        quiesce(data_dir)
        yield Api(client, data_dir, admin, student, operations)


def refusal_problems(response: httpx.Response, path: str, field: str) -> list[str]:
    """What is wrong with a response that should refuse field with a 422 problem."""
    if response.status_code != 422:
        return [f"{response.status_code} {response.text[:200]}"]
    problems = []
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        problems.append(f"content-type {response.headers.get('content-type')}")
    body = response.json()
    fields = [str(e.get("field", "")) for e in body.get("errors", [])]
    if not any(f == field or f.startswith(field + ".") or f.endswith("." + field) for f in fields):
        problems.append(f"{field} not named among {fields}")
    if body.get("instance") != path:
        problems.append(f"instance {body.get('instance')!r}, not {path!r}")
    if not str(body.get("type", "")).startswith(PROBLEM_TYPE_BASE):
        problems.append(f"type {body.get('type')!r}")
    return problems


async def test_every_write_operation_is_walked(api: Api) -> None:
    walked = {str(op) for op in api.operations}
    for expected in (
        "PUT /api/courses/{course_id}",
        "POST /api/questions/create",
        "POST /api/payments/create-order",
        "POST /api/assessments/submit",
        "POST /api/analytics/events",
        "PUT /gateway/weights/{prefix}",
    ):
        assert expected in walked, f"{expected} is missing from the OpenAPI walk: {sorted(walked)}"
    fields = {str(op): list(typed_fields(op.schema, op.components)) for op in api.operations}
    assert (("price_paise",), "integer") in fields["PUT /api/courses/{course_id}"]
    assert (("lessons", 0, "duration_minutes"), "integer") in fields["POST /api/courses"]


async def test_numbers_and_booleans_are_not_coerced_and_unknown_fields_are_refused(api: Api) -> None:
    failures: list[str] = []
    sent = 0
    for operation in api.operations:
        path = concrete(operation.path)
        send = getattr(api.client, operation.method)
        headers = api.admin
        if (await send(path, json={UNKNOWN_FIELD: 1}, headers=headers)).status_code == 403:
            headers = api.student  # a student's own action (admins do not enrol)
        before = digest(api.data_dir)
        cases: list[tuple[Any, str]] = [({UNKNOWN_FIELD: 1}, UNKNOWN_FIELD)]
        for location, kind in typed_fields(operation.schema, operation.components):
            name = ".".join(str(step) for step in location)
            cases += [(body_with(location, value), name) for value in WRONG[kind]]
        for body, field in cases:
            response = await send(path, json=body, headers=headers)
            sent += 1
            for problem in refusal_problems(response, path, field):
                failures.append(f"{operation} {body!r}: {problem}")
        changed = sorted(k for k, v in digest(api.data_dir).items() if before.get(k) != v)
        if changed:
            failures.append(f"{operation}: refused bodies wrote to {changed}")
    assert sent > 100, f"only {sent} requests: the walk found too few fields"
    assert not failures, f"{len(failures)} coerced or ignored value(s):\n" + "\n".join(failures[:60])


async def test_the_frameworks_own_refusals_use_the_same_problem_types_and_the_called_path(api: Api) -> None:
    """No route, or the wrong method, at a service behind the gateway: named like every other problem."""
    cases = [
        (f"/api/courses/{uuid.uuid4()}/no-such-thing", "get", 404, "not-found"),
        ("/api/auth/register", "delete", 405, "method-not-allowed"),
    ]
    for path, method, status, slug in cases:
        response = await getattr(api.client, method)(path, headers=api.admin)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        body = response.json()
        assert body["type"] == PROBLEM_TYPE_BASE + slug, body
        assert body["instance"] == path, body
