"""One Redis script call for the rate-limit checks of many requests (kit.ratelimit's round trip).

The script runs the ``limits`` library's moving-window scripts for each limit of each check, on
its data layout and keys, and reads what a check asks to read; ``Coalescer`` sends the checks
that arrive while a call is on its way together in the next call.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

# One call checks several requests at once (those that asked while the previous call was on its
# way). KEYS: per check, one moving-window list per limit, then the keys to read. ARGV: now, the
# number of checks, then per check: its number of limits, its number of keys to read, and
# (amount, expiry) per limit. For each limit of a check in turn: acquire_moving_window.lua (cost
# 1), then moving_window.lua's binary search for the oldest entry still in the window; a check
# stops after the first limit that refuses its hit. Returns, per check: (acquired 0|1, oldest
# timestamp as text, entries in window) per limit checked, then, when every limit took the hit,
# the value of each key to read.
ACQUIRE_ALL = """
local now = tonumber(ARGV[1])
local checks = tonumber(ARGV[2])
local k, a = 0, 2
local replies = {}
for c = 1, checks do
    local limits = tonumber(ARGV[a + 1])
    local reads = tonumber(ARGV[a + 2])
    a = a + 2
    local out = {}
    local refused = false
    for i = 1, limits do
        local key = KEYS[k + i]
        local limit = tonumber(ARGV[a + 2 * i - 1])
        local expiry = tonumber(ARGV[a + 2 * i])
        local acquired = 0
        if limit >= 1 then
            local entry = redis.call('lindex', key, limit - 1)
            if not (entry and tonumber(entry) >= now - expiry) then
                redis.call('lpush', key, now)
                redis.call('ltrim', key, 0, limit - 1)
                redis.call('expire', key, expiry)
                acquired = 1
            end
        end
        local target = now - expiry
        local low, high, found = 0, limit - 1, nil
        while low <= high do
            local mid = math.floor((low + high) / 2)
            local value = tonumber(redis.call('lindex', key, mid))
            if value and value >= target then
                found = mid
                low = mid + 1
            else
                high = mid - 1
            end
        end
        out[#out + 1] = acquired
        if found then
            out[#out + 1] = tostring(redis.call('lindex', key, found))
            out[#out + 1] = found + 1
        else
            out[#out + 1] = ''
            out[#out + 1] = 0
        end
        if acquired == 0 then
            refused = true
            break
        end
    end
    if not refused then
        for i = 1, reads do
            out[#out + 1] = redis.call('get', KEYS[k + limits + i])
        end
    end
    k = k + limits + reads
    a = a + 2 * limits
    replies[c] = out
end
return replies
"""


@dataclass
class _Check:
    keys: list[str]
    read: Sequence[str]
    args: list[float | int]
    reply: asyncio.Future[tuple[list[Any], int]]
    """The check's part of the script's reply, and how many checks the call carried."""


class Coalescer:
    """Sends the checks of concurrent requests in one script call, one call at a time.

    A check that arrives while a call is on its way waits for it and goes with the next one, with
    every other check that arrived meanwhile: under load, many requests share a round trip (its
    write, its wake-up and its read are most of a check's CPU); alone, a check goes at once. The
    call is made outside any request's trace, and runs with the library instrumentation
    suppressed: each request records the wait for its own check instead (``RateLimiter``).
    """

    def __init__(self, script: Any) -> None:
        self.script = script
        self.loop = asyncio.get_running_loop()
        self.waiting: list[_Check] = []
        self.sender: asyncio.Task[None] | None = None

    async def check(self, keys: list[str], read: Sequence[str], args: list[float | int]) -> tuple[list[Any], int]:
        """The script's reply for one check, and how many checks went in the same call."""
        reply: asyncio.Future[tuple[list[Any], int]] = self.loop.create_future()
        self.waiting.append(_Check(keys, read, args, reply))
        if self.sender is None:
            self.sender = self.loop.create_task(self._send(), context=QUIET.copy())
        return await reply

    async def _send(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    await self._call(batch)
                except BaseException as exc:
                    for check in batch:
                        if check.reply.done():
                            continue
                        if isinstance(exc, Exception):
                            check.reply.set_exception(exc)
                        else:
                            check.reply.cancel()
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self.sender = None
            for check in self.waiting:  # cancelled while sending: nothing may wait forever
                if not check.reply.done():
                    check.reply.cancel()
            self.waiting = []

    async def _call(self, batch: list[_Check]) -> None:
        keys: list[str] = []
        args: list[float | int] = [time.time(), len(batch)]
        for check in batch:
            keys += check.keys
            keys += check.read
            args += (len(check.keys), len(check.read), *check.args)
        replies = await self.script(keys=keys, args=args)
        for check, reply in zip(batch, replies, strict=True):
            if not check.reply.done():
                check.reply.set_result((reply, len(batch)))


def _detached() -> contextvars.Context:
    """A fresh context (no request's trace, log fields or deadlines) with the library instrumentation off."""
    fresh = contextvars.Context()
    fresh.run(otel_context.attach, otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, otel_context.Context()))
    return fresh


QUIET = _detached()
"""Copied for each call's sender: copying a context costs nothing, building one a few calls."""
