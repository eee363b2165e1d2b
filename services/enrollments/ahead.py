"""Calls a saga starts before the step that needs their answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CallsAhead:
    """Calls a saga started before the step that needs their answer; cancelled if it never comes."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[Any]] = {}

    def start(self, name: str, call: Awaitable[Any]) -> None:
        self._calls[name] = asyncio.ensure_future(call)

    async def take(self, name: str, otherwise: Callable[[], Awaitable[T]]) -> T:
        """The answer of the call started under ``name``, or else of ``otherwise()`` made now."""
        started = self._calls.pop(name, None)
        return await (started if started is not None else otherwise())

    async def settled(self, name: str) -> Any | None:
        """Waits for the call started under ``name``; its answer, or None when it failed or was never
        started. The call stays for ``take``, which raises its failure in the step that needs it."""
        call = self._calls.get(name)
        if call is None:
            return None
        await asyncio.wait({call})
        if call.cancelled() or call.exception() is not None:
            return None
        return call.result()

    def __enter__(self) -> CallsAhead:
        return self

    def __exit__(self, *_: object) -> None:
        for call in self._calls.values():  # a step before the one that needed it failed
            call.cancel()
            if call.done() and not call.cancelled():
                call.exception()  # retrieved: its failure is not the saga's
        self._calls.clear()
