"""What the gateway keeps of a stamped reply, whom it answers and for how long (no servers needed)."""

from __future__ import annotations

import uuid

import fakeredis
import pytest

from services.gateway import edge
from services.gateway.edge import EdgeCopies
from services.kit.auth import Identity
from services.kit.edge import EDGE_HEADER, Stamp
from services.kit.http import Reply
from services.kit.settings import ServiceSettings

SIDE, PAGE = "service", "/courses?"


def _store(max_bytes: int = edge.MAX_BYTES) -> EdgeCopies:
    # What is kept needs no Redis: the stand-in only answers a copy's checks the rate limit did not read.
    return EdgeCopies(ServiceSettings(environment="test"), fakeredis.FakeAsyncRedis(), max_bytes)


def _reply(
    generation: str = "g1", *, status: int = 200, ttl: int = 30, body: bytes = b"{}", scope: str = "role"
) -> Reply:
    return Reply(status, {EDGE_HEADER: f"test:courses:catalogue:generation {generation} {ttl} {scope}"}, body)


def _student(role: str = "student") -> Identity:
    return Identity(user_id=uuid.uuid4(), role=role, session_id=None)  # type: ignore[arg-type]


def test_only_a_stamped_200_without_cookies_and_of_bounded_size_is_kept() -> None:
    copies, plain = _store(), {"content-type": "application/json"}
    copies.keep(SIDE, "/courses?", None, Reply(200, {}, b"{}"), plain)
    copies.keep(SIDE, "/courses/x?", None, _reply(status=404), plain)
    copies.keep(SIDE, "/courses?a", None, _reply(), {**plain, "Set-Cookie": "session=1"})
    copies.keep(SIDE, "/courses?b", None, _reply(body=b"x" * (edge.MAX_BODY_BYTES + 1)), plain)
    copies.keep(SIDE, "/courses?c", None, Reply(200, {EDGE_HEADER: "not a stamp"}, b"{}"), plain)
    copies.keep(SIDE, "/users/profile?", None, _reply(scope="user"), plain)  # a user's copy with no user
    assert len(copies) == 0
    copies.keep(SIDE, PAGE, None, _reply(), plain)
    found = copies.find(SIDE, PAGE, None)
    assert found is not None and found[1].reply.headers == plain, "kept as passed on, without the stamp"


def test_a_copy_per_role_and_a_users_copy_for_that_user_alone() -> None:
    copies, asha, ravi, admin = _store(), _student(), _student(), _student("admin")
    copies.keep(SIDE, PAGE, asha, _reply(), {})
    assert copies.find(SIDE, PAGE, ravi) is not None, "a role's copy answers every caller of the role"
    assert copies.find(SIDE, PAGE, admin) is None and copies.find(SIDE, PAGE, None) is None
    copies.keep(SIDE, "/users/profile?", asha, _reply(scope="user"), {})
    assert copies.find(SIDE, "/users/profile?", ravi) is None
    mine = copies.find(SIDE, "/users/profile?", asha)
    assert mine is not None and mine[0] == (SIDE, "/users/profile?", f"user:{asha.user_id}")


def test_a_copy_answers_only_at_its_generation_and_within_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(edge.time, "monotonic", lambda: now[0])
    copies = _store()
    copies.keep(SIDE, PAGE, None, _reply("g1", ttl=30), {})
    found = copies.find(SIDE, PAGE, None)
    assert found is not None and copies.serve(*found, "g1")
    assert not copies.serve(*found, None), "a generation that could not be read serves nothing"
    assert copies.find(SIDE, PAGE, None) is None, "and the copy is dropped"
    copies.keep(SIDE, PAGE, None, _reply("g2", ttl=30), {})
    now[0] += 30
    assert copies.find(SIDE, PAGE, None) is None and copies.bytes == 0, "past the stamp's lifetime"


def test_a_copy_replaced_while_its_generation_was_read_survives_the_old_ones_miss() -> None:
    copies = _store()
    copies.keep(SIDE, PAGE, None, _reply("g1"), {})
    old = copies.find(SIDE, PAGE, None)
    assert old is not None
    copies.keep(SIDE, PAGE, None, _reply("g2"), {})  # another request kept a newer copy meanwhile
    assert not copies.serve(*old, "g2")
    newer = copies.find(SIDE, PAGE, None)
    assert newer is not None and newer[1].stamp == Stamp("test:courses:catalogue:generation", "g2", 30)


def test_past_the_memory_budget_the_least_recently_used_copy_goes_first() -> None:
    body = b"x" * 4000
    copies = _store(max_bytes=10_000)  # room for two such copies
    a, b, c = (f"/courses/{n}?" for n in "abc")
    copies.keep(SIDE, a, None, _reply(body=body), {})
    copies.keep(SIDE, b, None, _reply(body=body), {})
    found = copies.find(SIDE, a, None)
    assert found is not None and copies.serve(*found, "g1")  # a used: b is now the oldest
    copies.keep(SIDE, c, None, _reply(body=body), {})
    assert copies.find(SIDE, b, None) is None
    assert copies.find(SIDE, a, None) is not None and copies.find(SIDE, c, None) is not None
    assert len(copies) == 2 and copies.bytes <= 10_000
