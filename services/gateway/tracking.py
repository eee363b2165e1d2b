"""What the gateway read in Redis for its copies, kept for as long as Redis reports every change to it.

A copy answers (services/gateway/edge.py) while its generation is the one in Redis and the
caller's session is not signed out. Reading both on every request took a Redis round trip for each
read from a copy: its write, its wake-up and its read were most of what such a read cost the
gateway. Redis's client-side caching does the watching instead: one connection, in broadcast mode
(``CLIENT TRACKING ON BCAST``) for the generations' prefix and the signed-out sessions', is told of
every change to a key under them, whoever makes it: a value set, a key deleted or expired, the
database flushed. A value read in a round trip while the connection follows them stays good until
Redis reports that key; the next read of the same copy needs no round trip.

What keeps it exact:

- **A value is learnt only from a read sent while the connection followed the prefixes**, and only
  if no change was reported while the read was on its way (such a change may be one the read
  did not see).
- **A change made through this gateway** (a write it forwarded: a profile saved, a course edited,
  a sign-out) was reported before the service answered. The gateway then pings the connection
  and trusts nothing it learnt until the answer is back: Redis sends that answer after the
  report, so the caller's next read sees the change.
- **A change made elsewhere** (another gateway, an event consumer, an operator) is known when its
  report is read, a moment after the change.
- **While the connection is down** (start-up, a Redis restart, a lost connection), nothing is
  known and every read asks Redis, as before. Reconnecting starts from nothing.

The connection is a plain asyncio stream with hiredis's reply parser: redis-py's client consumes
invalidation messages itself (for its own client-side cache) and never hands them on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import hiredis
import structlog
from redis.asyncio.connection import parse_url

from services.kit.cache import REDIS_UNAVAILABLE
from services.kit.settings import ServiceSettings

log = structlog.get_logger("cerebrum.gateway.tracking")
CHANNEL = "__redis__:invalidate"
_BARRIER, _ALIVE = "barrier", "alive"


def _pack(*args: Any) -> bytes:
    return hiredis.pack_command(args)


_PING_BARRIER = _pack("PING", _BARRIER)
_PING_ALIVE = _pack("PING", _ALIVE)


class TrackedKeys:
    """Values of keys under ``prefixes`` read in Redis, forgotten as soon as Redis reports a change."""

    def __init__(
        self,
        settings: ServiceSettings,
        prefixes: Sequence[str],
        *,
        max_keys: int = 200_000,
        quiet_seconds: float = 5.0,
        retry_seconds: float = 0.5,
    ) -> None:
        if not settings.redis_url:
            raise ValueError("tracking needs a real Redis (REDIS_URL)")
        self.settings = settings
        self.prefixes = tuple(prefixes)
        self.max_keys = max_keys
        self.quiet_seconds = quiet_seconds
        self.retry_seconds = retry_seconds
        self.values: dict[str, str | None] = {}
        self.client_id: int | None = None
        """The connection's id in Redis (CLIENT LIST), while connected."""
        self.changes = 0
        """Reports read so far (and connections made): a read that spans one learns nothing."""
        self._live = False
        self._barriers = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def live(self) -> bool:
        return self._live

    def known(self, keys: Sequence[str]) -> tuple[str | None, ...] | None:
        """The keys' values (None: no such key), or None when any of them must be read in Redis."""
        if not self._live or self._barriers:
            return None
        values = self.values
        try:
            return tuple(values[key] for key in keys)
        except KeyError:
            return None

    def mark(self) -> int | None:
        """To take before a read whose values ``learn`` may keep; None while nothing can be learnt."""
        return self.changes if self._live else None

    def learn(self, mark: int | None, keys: Sequence[str], values: Sequence[str | None]) -> None:
        """Keeps values read in Redis since ``mark``, unless a change was reported meanwhile."""
        if mark is None or mark != self.changes or not self._live:
            return
        if len(self.values) >= self.max_keys:
            self.values.clear()  # bounded: a full table starts again (each key is read once more)
        for key, value in zip(keys, values, strict=True):
            self.values[key] = value

    def barrier(self) -> None:
        """After a change made through this gateway: nothing is trusted until Redis has reported every
        change made before now (the answer to this ping comes after them)."""
        if self._live and self._writer is not None:
            self._barriers += 1
            self._writer.write(_PING_BARRIER)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-tracking")

    async def stop(self) -> None:
        self._stopping, self._live = True, False
        if self._writer is not None:
            self._writer.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError, *REDIS_UNAVAILABLE):
                await task

    async def _run(self) -> None:
        delay, failing = self.retry_seconds, False
        while not self._stopping:
            try:
                await self._follow()
            except Exception as exc:  # Redis away, a refusal, a reply it could not parse: start again
                if self._live:
                    log.warning("tracking_lost", error=type(exc).__name__)
                elif not failing:
                    # Once per spell: every read from a copy asks Redis meanwhile (a Redis before 6,
                    # or one whose provider refuses CLIENT TRACKING, stays there).
                    log.warning("tracking_unavailable", error=type(exc).__name__, detail=str(exc)[:200])
                failing = not self._live
            finally:
                was_live, self._live, self._barriers = self._live, False, 0
                self.values.clear()
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            if self._stopping:
                return
            if was_live:
                delay = self.retry_seconds
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _follow(self) -> None:
        url = self.settings.redis_url or ""
        where = parse_url(url)
        host, port = where.get("host", "127.0.0.1"), where.get("port", 6379)
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(host, port, ssl=True if url.startswith("rediss:") else None)
        self._writer = writer
        parser = hiredis.Reader(encoding="utf-8")

        async def call(*args: Any) -> Any:
            writer.write(_pack(*args))
            async with asyncio.timeout(2):
                return await _reply(reader, parser)

        if where.get("password"):
            await call("AUTH", *([where["username"]] if where.get("username") else []), where["password"])
        client_id = self.client_id = await call("CLIENT", "ID")
        await call("CLIENT", "SETNAME", f"{self.settings.service_name}-tracking")
        prefixes = [arg for prefix in self.prefixes for arg in ("PREFIX", prefix)]
        await call("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes)
        await call("SUBSCRIBE", CHANNEL)
        self.values.clear()
        self.changes += 1
        self._live = True
        log.info("tracking_started", prefixes=list(self.prefixes))
        pinged = False
        while not self._stopping:
            try:
                async with asyncio.timeout(self.quiet_seconds):
                    message = await _reply(reader, parser)
            except TimeoutError:
                if pinged:
                    raise ConnectionError("the tracking connection did not answer a ping") from None
                writer.write(_PING_ALIVE)
                pinged = True
                continue
            pinged = False
            self._read(message)

    def _read(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            return
        if message[0] == "message" and len(message) == 3:
            keys = message[2]
            if keys is None:  # the database flushed
                self.values.clear()
            else:
                for key in keys:
                    self.values.pop(key, None)
            self.changes += 1
        elif message[0] == "pong" and len(message) == 2 and message[1] == _BARRIER and self._barriers:
            self._barriers -= 1


async def _reply(reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
    while True:
        reply = parser.gets()
        if reply is not False:
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectionError(f"Redis refused: {reply}")
            return reply
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("Redis closed the tracking connection")
        parser.feed(data)
