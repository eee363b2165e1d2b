"""Every event a service publishes or consumes has a contract, and publishers build the contract model.

The publishers are found by reading the source: every ``record`` call of a unit of work in
``services/`` (or a kit-level ``record_event``) must hand it a contract model built there
(``uow.record(UserDeleted(...))`` or a name bound to one in the same function), so an event type
with no contract fails here before any consumer meets it.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import services
from cerebrum.registry import SERVICES
from services.contracts import events as contracts

ROOT = Path(services.__file__).parent
PUBLISHERS = {"users", "courses", "enrollments", "payments", "assessments"}


@dataclass(frozen=True)
class Publication:
    where: str
    contract: str | None
    """The class the call hands to ``record_event``; none when the call does not build one."""


def _is_record_event(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Name) and func.id == "record_event") or (
        isinstance(func, ast.Attribute) and func.attr == "record_event"
    )


def _is_uow_record(call: ast.Call) -> bool:
    """``UnitOfWork.of(db).record(event)`` or ``uow.record(event)``."""
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "record" and len(call.args) == 1


def _class_called(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def publications(source: str, where: str) -> Iterator[Publication]:
    """Each ``record_event`` call in the source, with the contract class it is handed."""
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        bound: dict[str, str | None] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                bound[node.targets[0].id] = _class_called(node.value)
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            if _is_uow_record(node):
                event: ast.expr | None = node.args[0]
            elif _is_record_event(node):
                event = node.args[2] if len(node.args) > 2 else next(
                    (k.value for k in node.keywords if k.arg == "event"), None
                )
            else:
                continue
            contract = bound.get(event.id) if isinstance(event, ast.Name) else _class_called(event)
            yield Publication(f"{where}:{node.lineno}", contract)


def published_by_services() -> dict[str, list[Publication]]:
    found: dict[str, list[Publication]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("kit", "contracts") or "migrations" in relative.parts:
            continue
        for publication in publications(path.read_text(encoding="utf-8"), f"services/{relative}"):
            found.setdefault(relative.parts[0], []).append(publication)
    return found


def unregistered(found: list[Publication]) -> list[str]:
    """The calls that publish something other than a contract registered under its own type."""
    wrong = []
    for publication in found:
        contract = getattr(contracts, publication.contract or "", None)
        registered = (
            isinstance(contract, type)
            and issubclass(contract, contracts.Payload)
            and contracts.CONTRACTS.get(getattr(contract, "event_type", "")) is contract
        )
        if not registered:
            wrong.append(f"{publication.where} publishes {publication.contract or 'something that is no contract'}")
    return wrong


def test_every_event_a_service_publishes_has_a_contract() -> None:
    found = published_by_services()
    assert set(found) == PUBLISHERS, "the walk found the services that publish"
    assert unregistered([p for ps in found.values() for p in ps]) == []


def test_every_publisher_declares_the_contracts_it_records_so_their_counters_start_at_zero() -> None:
    found = published_by_services()
    for name in PUBLISHERS:
        declared = {contract.__name__ for contract in importlib.import_module(f"services.{name}.app").PUBLISHES}
        assert declared == {p.contract for p in found[name]}, f"services/{name}/app.py PUBLISHES"


def test_the_walk_refuses_a_type_with_no_contract_and_a_hand_built_dict() -> None:
    source = '''
async def rename(db, course):
    await record_event(db, OUTBOX, CourseRenamed(course_id=course.id), source="courses")
    await events.record_event(db, OUTBOX, {"user_id": "u"}, source="users")
    deleted = UserDeleted(user_id=course.id)
    await record_event(db, OUTBOX, deleted, source="users")
'''
    found = list(publications(source, "example.py"))
    assert unregistered(found) == [
        "example.py:3 publishes CourseRenamed",
        "example.py:4 publishes something that is no contract",
    ]


def test_every_contract_is_registered_under_its_own_type() -> None:
    for event_type, contract in contracts.CONTRACTS.items():
        assert contract.event_type == event_type


def test_every_event_a_service_consumes_has_a_contract() -> None:
    consumed = {event_type for spec in SERVICES.values() for event_type in spec.consumes}
    assert consumed, "the registry names what its consumers handle"
    assert consumed - set(contracts.CONTRACTS) == set()
