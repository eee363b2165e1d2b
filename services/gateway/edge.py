"""The gateway's copies of stamped replies (kit.edge): kept per path, query and role, in memory.

A copy is served while the generation its service stamped it with is the one Redis holds, read
in the rate limit's round trip; the request still counts against the rate limit. A copy is a
200 to a GET without cookies; the least recently used goes first past ``MAX_COPIES``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from observability.metrics import at_zero, counter
from services.kit.auth import Identity, revoked_session_key
from services.kit.cache import REDIS_UNAVAILABLE
from services.kit.edge import EDGE_HEADER, Stamp
from services.kit.http import Reply
from services.kit.ratelimit import Decision
from services.kit.settings import ServiceSettings

COPIES = at_zero(
    counter(
        "cerebrum_gateway_edge_copies_total",
        "The gateway's copies of public replies, by result: hit (a request answered from a copy), "
        "changed (a copy whose generation moved on, or could not be read: the request was sent on) "
        "or kept (a stamped reply kept).",
        ("result",),
    ),
    "hit",
    "changed",
    "kept",
)
MAX_COPIES = 2048
MAX_BODY_BYTES = 256 * 1024

CopyKey = tuple[str, str, str]
"""The split's side, the path with its query, and the caller's role ("" for anonymous)."""


@dataclass(frozen=True)
class Copy:
    reply: Reply
    stamp: Stamp
    kept_at: float

    @property
    def age(self) -> int:
        return int(time.monotonic() - self.kept_at)


class EdgeCopies:
    def __init__(self, settings: ServiceSettings, redis: aioredis.Redis, max_copies: int = MAX_COPIES) -> None:
        self.settings = settings
        self.redis = redis
        self.max_copies = max_copies
        self._copies: OrderedDict[CopyKey, Copy] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def find(self, key: CopyKey) -> Copy | None:
        """The copy for the request, unless it has outlived its stamp's lifetime."""
        copy = self._copies.get(key)
        if copy is not None and time.monotonic() - copy.kept_at >= copy.stamp.ttl_seconds:
            del self._copies[key]
            return None
        return copy

    def checks(self, copy: Copy, identity: Identity | None) -> tuple[str, ...]:
        """The keys to read before the copy answers: its generation, and whether the caller's session
        was signed out (the service would refuse that caller: so does the copy)."""
        if identity is None or not identity.session_id:
            return (copy.stamp.generation_key,)
        return copy.stamp.generation_key, revoked_session_key(self.settings, identity.session_id)

    async def answers(self, key: CopyKey, copy: Copy, checks: tuple[str, ...], decision: Decision) -> bool:
        """Whether the copy answers: its generation is the one in Redis, and the session is not signed out.

        ``decision``: the rate limit's, which read ``checks`` in its round trip when it could.
        """
        values = decision.read
        if values is None:  # read apart (a limiter without the shared script, as the embedded platform's)
            try:
                values = tuple(None if v is None else str(v) for v in await self.redis.mget(checks))
            except REDIS_UNAVAILABLE:
                values = (None,) * len(checks)
        if any(revoked is not None for revoked in values[1:]):
            return False  # the service answers a signed-out session (401); the copy stays for the others
        return self.serve(key, copy, values[0])

    def serve(self, key: CopyKey, copy: Copy, generation: str | None) -> bool:
        """Whether the copy may answer, given the generation Redis holds now (None: none, or unread).

        Other requests ran while the generation was read: the copy may have gone, or been replaced.
        """
        current = self._copies.get(key) is copy
        if generation is not None and generation == copy.stamp.generation:
            if current:
                self._copies.move_to_end(key)
            COPIES.labels("hit").inc()
            return True
        if current:
            del self._copies[key]
        COPIES.labels("changed").inc()
        return False

    def keep(self, key: CopyKey, reply: Reply, headers: Mapping[str, str]) -> None:
        """Keeps a stamped 200 (``headers``: the reply's, as the gateway passes them on)."""
        raw = reply.headers.get(EDGE_HEADER)
        stamp = Stamp.parse(raw) if raw else None
        if stamp is None or reply.status != 200 or len(reply.body) > MAX_BODY_BYTES:
            return
        if any(name.lower() == "set-cookie" for name in headers):
            return
        self._copies[key] = Copy(Reply(reply.status, dict(headers), reply.body), stamp, time.monotonic())
        self._copies.move_to_end(key)
        COPIES.labels("kept").inc()
        while len(self._copies) > self.max_copies:
            self._copies.popitem(last=False)
