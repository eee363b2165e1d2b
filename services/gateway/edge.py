"""The gateway's copies of stamped replies (kit.edge), in memory: per path and query, and per role
or per user as the stamp says.

A copy answers while the generation its service stamped it with is the one Redis holds, and
while the caller's session is not signed out: both read in the rate limit's round trip, or known
from the last such read while Redis reports every change to them (services/gateway/tracking.py).
The request still counts against the rate limit. A copy is a 200 to a GET, without
cookies; past ``MAX_BYTES`` in all, the least recently used goes first. A request that says
``Cache-Control: no-cache`` (or ``Pragma: no-cache``) is answered by the service, whose reply
replaces the copy; one that says ``no-store`` is answered by the service and its reply not kept.
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
        "The gateway's copies of replies, by result: hit (a request answered from a copy), "
        "changed (a copy whose generation moved on, or could not be read: the request was sent on) "
        "or kept (a stamped reply kept).",
        ("result",),
    ),
    "hit",
    "changed",
    "kept",
)
MAX_BYTES = 64 * 1024 * 1024
MAX_BODY_BYTES = 256 * 1024
_OVERHEAD_BYTES = 512  # a copy's objects and its place in the table, roughly

CopyKey = tuple[str, str, str]
"""The split's side, the path with its query, and whom it answers (``role:<role>``, ``user:<id>``)."""


@dataclass(frozen=True)
class Copy:
    reply: Reply
    stamp: Stamp
    kept_at: float
    size: int

    @property
    def age(self) -> int:
        return int(time.monotonic() - self.kept_at)


def _whom(stamp: Stamp, identity: Identity | None) -> str | None:
    if stamp.scope == "user":
        return f"user:{identity.user_id}" if identity is not None else None
    return f"role:{identity.role if identity is not None else ''}"


class EdgeCopies:
    def __init__(
        self, settings: ServiceSettings, read_apart: aioredis.Redis | None, max_bytes: int = MAX_BYTES
    ) -> None:
        """``read_apart``: the client that reads a copy's checks when the rate limit cannot read them in
        its round trip (a limiter in memory, as the embedded platform's); None when it always can, so
        that a decision without them means Redis is away, and is not asked a second time."""
        self.settings = settings
        self.read_apart = read_apart
        self.max_bytes = max_bytes
        self.bytes = 0
        self._copies: OrderedDict[CopyKey, Copy] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def find(self, side: str, path_query: str, identity: Identity | None) -> tuple[CopyKey, Copy] | None:
        """The caller's own copy, else their role's, unless it has outlived its stamp's lifetime."""
        role: CopyKey = (side, path_query, f"role:{identity.role if identity is not None else ''}")
        for key in ((side, path_query, f"user:{identity.user_id}"), role) if identity is not None else (role,):
            copy = self._copies.get(key)
            if copy is None:
                continue
            if time.monotonic() - copy.kept_at >= copy.stamp.ttl_seconds:
                self._forget(key)
                return None
            return key, copy
        return None

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
        if values is None:
            values = (None,) * len(checks)
            if self.read_apart is not None:
                try:
                    values = tuple(None if v is None else str(v) for v in await self.read_apart.mget(checks))
                except REDIS_UNAVAILABLE:
                    pass
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
            self._forget(key)
        COPIES.labels("changed").inc()
        return False

    def keep(
        self, side: str, path_query: str, identity: Identity | None, reply: Reply, headers: Mapping[str, str]
    ) -> None:
        """Keeps a stamped 200 (``headers``: the reply's, as the gateway passes them on)."""
        raw = reply.headers.get(EDGE_HEADER)
        stamp = Stamp.parse(raw) if raw else None
        if stamp is None or reply.status != 200 or len(reply.body) > MAX_BODY_BYTES:
            return
        if any(name.lower() == "set-cookie" for name in headers):
            return
        whom = _whom(stamp, identity)
        if whom is None:
            return
        key = (side, path_query, whom)
        self._forget(key)
        size = len(reply.body) + sum(len(k) + len(v) for k, v in headers.items()) + len(path_query) + _OVERHEAD_BYTES
        self._copies[key] = Copy(Reply(reply.status, dict(headers), reply.body), stamp, time.monotonic(), size)
        self.bytes += size
        COPIES.labels("kept").inc()
        while self.bytes > self.max_bytes and self._copies:
            self._forget(next(iter(self._copies)))

    def _forget(self, key: CopyKey) -> None:
        copy = self._copies.pop(key, None)
        if copy is not None:
            self.bytes -= copy.size
