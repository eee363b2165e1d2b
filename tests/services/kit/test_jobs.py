"""A periodic job: woken early, survives a failed iteration, always stops, and polls without traces."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.kit.jobs import PeriodicJob
from tests.conftest import LogCapture

GUARD = 30  # seconds: a guard against hanging, never a measured time
tracer = trace.get_tracer("tests.jobs")


class Rounds:
    """An iteration that counts its runs and lets a test wait for the n-th."""

    def __init__(self, fail_first: int = 0) -> None:
        self.count = 0
        self.fail_first = fail_first
        self.changed = asyncio.Condition()

    async def __call__(self) -> None:
        self.count += 1
        async with self.changed:
            self.changed.notify_all()
        if self.count <= self.fail_first:
            raise RuntimeError(f"round {self.count} failed")

    async def reach(self, n: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.count >= n), GUARD)


async def test_a_wake_up_runs_the_next_iteration_before_the_interval() -> None:
    rounds = Rounds()
    job = PeriodicJob("woken", rounds, interval=3600)
    await job.start()
    try:
        await rounds.reach(1)
        job.wake()
        await rounds.reach(2)  # an hour early
    finally:
        await job.stop()
    assert not job.running


async def test_a_wake_up_event_set_by_someone_else_works_the_same() -> None:
    rounds, wake = Rounds(), asyncio.Event()
    job = PeriodicJob("shared-event", rounds, interval=3600, wake=wake)
    await job.start()
    try:
        await rounds.reach(1)
        wake.set()  # as a commit hook does
        await rounds.reach(2)
    finally:
        await job.stop()


async def test_a_failed_iteration_is_logged_and_the_loop_goes_on(logs: LogCapture) -> None:
    rounds = Rounds(fail_first=2)
    job = PeriodicJob("flaky", rounds, interval=0.01)
    await job.start()
    try:
        await rounds.reach(4)
    finally:
        await job.stop()
    failures = [line for line in logs.lines() if line.get("event") == "job_iteration_failed"]
    assert [(f["job"], f["error"]) for f in failures] == [
        ("flaky", "RuntimeError: round 1 failed"),
        ("flaky", "RuntimeError: round 2 failed"),
    ]


async def test_an_iteration_may_ask_to_run_again_at_once() -> None:
    runs = 0

    async def drain() -> float | None:
        nonlocal runs
        runs += 1
        return 0 if runs < 5 else None  # a full batch: more is waiting

    job = PeriodicJob("drain", drain, interval=3600)
    await job.start()
    for _ in range(1000):
        if runs >= 5:
            break
        await asyncio.sleep(0.01)
    await job.stop()
    assert runs == 5


async def test_stop_cancels_an_iteration_in_progress() -> None:
    started, finished = asyncio.Event(), False

    async def slow() -> None:
        nonlocal finished
        started.set()
        await asyncio.sleep(3600)
        finished = True

    job = PeriodicJob("slow", slow, interval=1)
    await job.start()
    await asyncio.wait_for(started.wait(), GUARD)
    await asyncio.wait_for(job.stop(), GUARD)
    assert not job.running and not finished


async def test_a_cancellation_a_driver_turns_into_its_own_error_still_stops_the_loop(logs: LogCapture) -> None:
    passes, started = 0, asyncio.Event()

    async def stubborn() -> None:
        nonlocal passes
        passes += 1
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("connection was closed in the middle of operation") from None

    job = PeriodicJob("stubborn", stubborn, interval=0.01)
    await job.start()
    await asyncio.wait_for(started.wait(), GUARD)
    await asyncio.wait_for(job.stop(), GUARD)
    assert passes == 1, "the loop started another pass instead of ending"
    assert not [line for line in logs.lines() if line.get("event") in ("job_iteration_failed", "job_abandoned")]


async def test_an_iteration_that_ignores_its_cancellation_is_abandoned_at_the_stop_timeout(logs: LogCapture) -> None:
    release, started = asyncio.Event(), asyncio.Event()

    async def deaf() -> None:
        started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallowed: what a badly behaved driver might do

    job = PeriodicJob("deaf", deaf, interval=1, stop_timeout=0.2)
    await job.start()
    await asyncio.wait_for(started.wait(), GUARD)
    await asyncio.wait_for(job.stop(), GUARD)  # returns although the iteration is still running
    (abandoned,) = [line for line in logs.lines() if line.get("event") == "job_abandoned"]
    assert abandoned["job"] == "deaf" and abandoned["level"] == "error"
    release.set()


async def test_an_iteration_s_queries_start_no_trace_but_its_work_does(spans: InMemorySpanExporter) -> None:
    done = asyncio.Event()

    async def poll() -> None:
        # A query outside any trace, as a poll makes: dropped. Work found: a span of the job's own,
        # with a query inside it, kept.
        with tracer.start_as_current_span("SELECT due", kind=SpanKind.CLIENT):
            pass
        with tracer.start_as_current_span("work.found"):
            with tracer.start_as_current_span("UPDATE due", kind=SpanKind.CLIENT):
                pass
        done.set()

    job = PeriodicJob("poller", poll, interval=3600)
    await job.start()
    await asyncio.wait_for(done.wait(), GUARD)
    await job.stop()
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"work.found", "UPDATE due"}
    assert finished["UPDATE due"].parent is not None
    assert finished["UPDATE due"].parent.span_id == finished["work.found"].context.span_id


async def test_the_same_query_outside_a_job_is_traced(spans: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("SELECT by a request", kind=SpanKind.CLIENT):
        pass
    assert [span.name for span in spans.get_finished_spans()] == ["SELECT by a request"]
