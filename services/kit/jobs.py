"""One periodic job: an iteration run again and again, from the app's start to its stop.

Every background loop of the platform is one (the outbox relay, the notification dispatcher, the
saga recovery, order expiry, analytics' aggregation and upkeep), so that all behave alike:

- An iteration that raises is logged and the loop goes on after the interval. An iteration may
  return how many seconds to wait before the next one (0: at once, a full batch means more work);
  ``None`` waits the interval. A wake-up event (set by a commit that queued work) cuts a wait short.
- ``stop()`` ends a wait at once and cancels an iteration in progress: its transaction rolls back
  and the next start does its work again (every job claims its work in a transaction, and doing
  it twice is safe). It waits ``stop_timeout`` seconds at most for the loop to end.
- A driver may turn the cancellation of a query into an error of its own. The loop checks its stop
  flag after every iteration, so that error ends it instead of starting another round; a loop
  still alive at the timeout is abandoned with an error line, so that shutdown never hangs.
- Each iteration is a background poll (``observability.tracing.background_poll``): its queries
  start no trace, the work it finds is traced in its own spans or in the trace that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from observability.tracing import background_poll

log = structlog.get_logger("cerebrum.jobs")
Iteration = Callable[[], Awaitable[float | None]]


class PeriodicJob:
    """Runs ``iteration`` every ``interval`` seconds (or when woken) between ``start`` and ``stop``."""

    def __init__(
        self,
        name: str,
        iteration: Iteration,
        *,
        interval: float,
        wake: asyncio.Event | None = None,
        stop_timeout: float = 10.0,
        run_at_start: bool = True,
    ) -> None:
        self.name = name
        self.iteration = iteration
        self.interval = interval
        self.stop_timeout = stop_timeout
        self.run_at_start = run_at_start
        self._wake = wake or asyncio.Event()
        self._stopping = False
        self._busy = False
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The loop's task from ``start`` until ``stop``."""
        return self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Runs the next iteration now instead of at the end of the wait."""
        self._wake.set()

    async def start(self) -> None:
        """Starts the loop (once: starting a running job changes nothing)."""
        if self.running:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stops the loop: cancels an iteration in progress and waits, ``stop_timeout`` seconds at most."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if self._busy:
            task.cancel()
        else:
            self._wake.set()  # an idle loop ends by itself: nothing to roll back
        try:
            done, _ = await asyncio.wait({task}, timeout=self.stop_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            log.error("job_abandoned", job=self.name, timeout_s=self.stop_timeout)

    async def _run(self) -> None:
        if not self.run_at_start:
            await self._pause(self.interval)
        while not self._stopping:
            self._wake.clear()  # before the iteration: work queued during it wakes the next one
            self._busy = True
            try:
                with background_poll():
                    delay = await self.iteration()
            except Exception as exc:
                if self._stopping:
                    return  # most likely our own cancellation, reworded by a driver
                log.warning("job_iteration_failed", job=self.name, error=f"{type(exc).__name__}: {exc}"[:300])
                delay = None
            finally:
                self._busy = False
            if self._stopping:
                return
            await self._pause(self.interval if delay is None else delay)

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # let the rest of the process run between back-to-back batches
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
