"""How a broker outage is waited out and reported: one line per attempt, with back-off.

pika logs seven lines, one with a traceback, for every connection that fails; a consumer that
retried each second filled ~1.1 MB of logs per service in a 6.5-minute outage. The transport
reports each failed attempt itself, once, with the attempt number and the wait before the next.
"""

from __future__ import annotations

import logging
from typing import Any

from tenacity import RetryCallState, wait_exponential, wait_random

# 0.5 s, 1 s, 2 s, 4 s, then 8 s, plus up to 2 s of jitter so that the consumers of every
# service do not all knock at once when the broker comes back.
RECONNECT_WAIT = wait_exponential(multiplier=0.5, max=8) + wait_random(0, 2)

# The loggers of pika's connection machinery (socket, workflow, blocking adapter): what they say
# about a failed connection is in the exception the transport reports.
_PIKA_CONNECTION_LOGGERS = (
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.blocking_connection",
    "pika.adapters.base_connection",
)


def quiet_pika_connection_logs() -> None:
    """Leaves pika's per-attempt connection errors to the transport's own line (idempotent)."""
    for name in _PIKA_CONNECTION_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def describe(exc: BaseException) -> str:
    # pika's AMQPConnectionError says nothing as a string; its repr names the cause (refused, reset).
    return (f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))[:200]


class Outage:
    """The reconnection log of one connection: a warning per attempt, a traceback once per outage."""

    def __init__(self, log: Any, **fields: str) -> None:
        self.log = log
        self.fields = fields
        self._traceback_shown = False

    def lost(self, exc: BaseException) -> None:
        """The connection was lost while in use."""
        self.log.warning("broker_connection_lost", **self.fields, reason=describe(exc), **self._traceback(exc))

    def attempt_failed(self, state: RetryCallState) -> None:
        """A tenacity ``before_sleep`` hook: the attempt that failed and when the next one is."""
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self.log.warning(
            "broker_reconnect_failed",
            **self.fields,
            attempt=state.attempt_number,
            next_attempt_in_s=round(delay, 1),
            reason=describe(exc) if exc is not None else "",
            **self._traceback(exc),
        )

    def over(self) -> None:
        """Connected: the next outage shows its traceback again."""
        if self._traceback_shown:
            self.log.info("broker_reconnected", **self.fields)
        self._traceback_shown = False

    def _traceback(self, exc: BaseException | None) -> dict[str, BaseException]:
        if self._traceback_shown or exc is None:
            return {}
        self._traceback_shown = True
        return {"exc_info": exc}
