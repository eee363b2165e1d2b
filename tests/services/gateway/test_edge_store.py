"""What the gateway keeps of a stamped reply, and for how long (no servers needed)."""

from __future__ import annotations

import fakeredis
import pytest

from services.gateway import edge
from services.gateway.edge import EdgeCopies
from services.kit.edge import EDGE_HEADER, Stamp
from services.kit.http import Reply
from services.kit.settings import ServiceSettings


def _store(max_copies: int = edge.MAX_COPIES) -> EdgeCopies:
    # What is kept needs no Redis: the store's client (a stand-in) is only read for a copy's checks.
    return EdgeCopies(ServiceSettings(environment="test"), fakeredis.FakeAsyncRedis(), max_copies)


def _reply(generation: str = "g1", *, status: int = 200, ttl: int = 30, body: bytes = b"{}") -> Reply:
    return Reply(status, {EDGE_HEADER: f"test:courses:catalogue:generation {generation} {ttl}"}, body)


def test_only_a_stamped_200_without_cookies_and_of_bounded_size_is_kept() -> None:
    copies = _store()
    plain = {"content-type": "application/json"}
    copies.keep(("service", "/courses?", ""), Reply(200, {}, b"{}"), plain)
    copies.keep(("service", "/courses/x?", ""), _reply(status=404), plain)
    copies.keep(("service", "/courses?a", ""), _reply(), {**plain, "Set-Cookie": "session=1"})
    copies.keep(("service", "/courses?b", ""), _reply(body=b"x" * (edge.MAX_BODY_BYTES + 1)), plain)
    copies.keep(("service", "/courses?c", ""), Reply(200, {EDGE_HEADER: "not a stamp"}, b"{}"), plain)
    assert len(copies) == 0
    copies.keep(("service", "/courses?", ""), _reply(), plain)
    found = copies.find(("service", "/courses?", ""))
    assert found is not None and found.reply.headers == plain, "kept as passed on, without the stamp"


def test_a_copy_answers_only_at_its_generation_and_within_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(edge.time, "monotonic", lambda: now[0])
    copies, key = _store(), ("service", "/courses?", "student")
    copies.keep(key, _reply("g1", ttl=30), {})
    copy = copies.find(key)
    assert copy is not None and copies.serve(key, copy, "g1")
    assert not copies.serve(key, copy, None), "a generation that could not be read serves nothing"
    assert copies.find(key) is None, "and the copy is dropped"
    copies.keep(key, _reply("g2", ttl=30), {})
    now[0] += 30
    assert copies.find(key) is None, "past the stamp's lifetime"


def test_a_copy_replaced_while_its_generation_was_read_survives_the_old_ones_miss() -> None:
    copies, key = _store(), ("service", "/courses?", "")
    copies.keep(key, _reply("g1"), {})
    old = copies.find(key)
    assert old is not None
    copies.keep(key, _reply("g2"), {})  # another request kept a newer copy meanwhile
    assert not copies.serve(key, old, "g2")
    newer = copies.find(key)
    assert newer is not None and newer.stamp == Stamp("test:courses:catalogue:generation", "g2", 30)


def test_the_least_recently_used_copy_goes_first() -> None:
    copies = _store(max_copies=2)
    a, b, c = (("service", f"/courses/{n}?", "") for n in "abc")
    copies.keep(a, _reply(), {})
    copies.keep(b, _reply(), {})
    copy = copies.find(a)
    assert copy is not None and copies.serve(a, copy, "g1")  # a used: b is now the oldest
    copies.keep(c, _reply(), {})
    assert copies.find(b) is None and copies.find(a) is not None and copies.find(c) is not None
