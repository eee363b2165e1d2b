"""``cerebrum data migrate``: copy each service's tables, catch up with live writes, cut over.

Per service: make the target's tables (the service's own migrations), start the change log in
the source, copy every table in batches from its checkpoint, then replay the logged changes in
rounds — once, or (``follow``) until told to stop — and with ``cutover`` stop the monolith's
writes and finish. A second run with nothing new to copy or replay writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from datamigration import capture, checkpoint
from datamigration.bulkcopy import UnitCopier, count_rows
from datamigration.cutover import CutoverResult, cut_over, sync_sequences
from datamigration.endpoints import Endpoint, TargetLayout, qname
from datamigration.partitions import known_months
from datamigration.plan import PlanError, ServicePlan, ServiceSchema, TablePlan, build_plan
from datamigration.progress import QuietReporter, Reporter
from datamigration.targets import prepare_targets, replica_mode, truncate


@dataclass(frozen=True)
class MigrateOptions:
    batch_size: int = 20_000
    follow: bool = False
    """Keep replaying changes until ``stop`` is set (Ctrl-C), then cut over if asked."""
    cutover: bool = False
    checkpoint_reset: bool = False
    jobs: int = 2
    """Services migrated at once."""
    interval_s: float = 1.0
    """Pause between catch-up rounds."""
    max_lag: int = 1_000
    """Without ``follow``, cut over once a round has at most this many changes to replay."""
    max_rounds: int = 100
    prepare_targets: bool = True


@dataclass
class ServiceResult:
    service: str
    status: str = "copying"
    """interrupted, caught-up, cut-over, or nothing to move (none of its tables is in the monolith)."""
    rows_copied: int = 0
    changes_written: int = 0
    rounds: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cutover: CutoverResult | None = None


class CatchUp:
    """Rounds of replaying a service's logged changes into its target, table by table in plan order."""

    def __init__(
        self,
        src: asyncpg.Connection,
        plan: ServicePlan,
        appliers: dict[str, capture.ChangeApplier],
        watermarks: dict[str, int],
        reporter: Reporter,
        result: ServiceResult,
        *,
        this_database_only: bool,
    ) -> None:
        self.src, self.plan, self.appliers, self.watermarks = src, plan, appliers, watermarks
        self.reporter, self.result, self.this_database_only = reporter, result, this_database_only

    @classmethod
    async def start(
        cls,
        src: asyncpg.Connection,
        tgt: asyncpg.Connection,
        plan: ServicePlan,
        batch_size: int,
        reporter: Reporter,
        result: ServiceResult,
    ) -> CatchUp:
        states = await checkpoint.load(tgt, plan.name)
        appliers = {t.name: capture.ChangeApplier(src, tgt, t, batch_size=batch_size) for t in plan.tables}
        for table in plan.tables:
            if table.month_column:
                appliers[table.name].months = await known_months(tgt, table)
        watermarks = {t.name: states[(t.name, "")].watermark for t in plan.tables}
        precise = await capture.sees_all_sessions(src)
        return cls(src, plan, appliers, watermarks, reporter, result, this_database_only=precise)

    async def round(self) -> int:
        """Replays what committed below the current horizon; returns the changes still logged."""
        point = await capture.horizon(self.src, this_database_only=self.this_database_only)
        return (await self._replay(below=point, watermark=point))[1]

    async def final_round(self, watermark: int) -> int:
        """Replays everything logged (writers are locked out); returns the rows it wrote."""
        return (await self._replay(below=None, watermark=watermark))[0]

    async def _replay(self, *, below: int | None, watermark: int) -> tuple[int, int]:
        written = 0
        for table in self.plan.tables:
            applier = self.appliers[table.name]
            since = self.watermarks[table.name]
            applied = await capture.replay_table(
                self.src, applier.tgt, applier, since=since, below=below, watermark=watermark
            )
            self.watermarks[table.name] = max(since, watermark)
            written += applied.writes
        self.result.rounds += 1
        self.result.changes_written += written
        lag = await capture.pending(self.src, self.plan)
        self.reporter.caught_up(self.plan.name, round_no=self.result.rounds, applied=written, pending=lag)
        return written, lag


class ServiceMigration:
    """One service's move, on one source and one target connection."""

    def __init__(
        self,
        plan: ServicePlan,
        options: MigrateOptions,
        reporter: Reporter,
        stop: asyncio.Event,
        copy_slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.plan, self.options, self.reporter, self.stop = plan, options, reporter, stop
        # Copies take turns (``jobs`` at once); following does not, or the first services to
        # follow would keep the others from ever starting.
        self.copy_slots = copy_slots or asyncio.Semaphore(1)
        self.result = ServiceResult(plan.name, skipped=list(plan.skipped))

    async def run(self) -> ServiceResult:
        if not self.plan.tables:
            self.result.status = "nothing to move"
            return self.result
        src, tgt = await self.plan.source.connect(), await self.plan.target.connect()
        try:
            if not await src.fetchval(
                "SELECT pg_try_advisory_lock(hashtext('cerebrum-data-migrate'), hashtext($1))", self.plan.name
            ):
                raise PlanError(f"another migration of {self.plan.name} from this source is running")
            await replica_mode(tgt)
            await checkpoint.ensure_table(tgt)
            if self.options.checkpoint_reset:
                await truncate(tgt, self.plan)
                await checkpoint.reset(tgt, self.plan.name)
            return await self._run(src, tgt)
        finally:
            await src.close()
            await tgt.close()

    async def _run(self, src: asyncpg.Connection, tgt: asyncpg.Connection) -> ServiceResult:
        states = await checkpoint.load(tgt, self.plan.name)
        self._check_source(states)
        if states and all(s.phase == checkpoint.CUTOVER for (_, unit), s in states.items() if unit == ""):
            self.result.status = "cut-over"
            self.reporter.note(f"{self.plan.name}: already cut over; nothing to do")
            return self.result
        await capture.install(src, self.plan)
        async with self.copy_slots:
            for table in self.plan.tables:
                if not await self._copy(src, tgt, table, states):
                    self.result.status = "interrupted"
                    self.reporter.note(f"{self.plan.name}: interrupted; run again to resume from the checkpoint")
                    return self.result
        catch_up = await CatchUp.start(src, tgt, self.plan, self.options.batch_size, self.reporter, self.result)
        lag = await catch_up.round()
        if self.options.follow:
            while not self.stop.is_set():
                try:
                    await asyncio.wait_for(self.stop.wait(), self.options.interval_s)
                except TimeoutError:
                    lag = await catch_up.round()
        elif self.options.cutover:
            for _ in range(self.options.max_rounds):
                if lag <= self.options.max_lag:
                    break
                lag = await catch_up.round()
        if self.options.cutover:
            self.result.cutover = await cut_over(self.plan, src, tgt, catch_up.final_round)
            self.result.status = "cut-over"
            self.reporter.note(
                f"{self.plan.name}: cut over; monolith writes paused {self.result.cutover.writes_paused_ms:.0f} ms, "
                f"{self.result.cutover.final_changes} rows written in the final round"
            )
        else:
            for table in self.plan.tables:
                await sync_sequences(src, tgt, table)
            self.result.status = "caught-up"
        return self.result

    def _check_source(self, states: dict[tuple[str, str], checkpoint.Checkpoint]) -> None:
        others = {s.source for s in states.values()} - {self.plan.source.label}
        if others:
            raise PlanError(
                f"{self.plan.name}: the target's checkpoints are from {', '.join(sorted(others))}, "
                f"not {self.plan.source.label}; use --checkpoint-reset to start over"
            )

    async def _copy(
        self,
        src: asyncpg.Connection,
        tgt: asyncpg.Connection,
        table: TablePlan,
        states: dict[tuple[str, str], checkpoint.Checkpoint],
    ) -> bool:
        """Copies a table's units from their checkpoints; False when stopped before the end."""
        table_state = states.get((table.name, ""))
        if table_state is not None and table_state.done:
            return True
        if table_state is None:
            totals = {unit[1]: await count_rows(src, qname(*unit)) for unit in table.units}
            await checkpoint.begin(tgt, table, source=self.plan.source.label, totals=totals)
            states = await checkpoint.load(tgt, self.plan.name)
        units = [states[(table.name, unit[1])] for unit in table.units if (table.name, unit[1]) in states]
        total = sum(u.rows_total or 0 for u in units)
        self.reporter.table_started(table.label, total=total, done=sum(u.rows_copied for u in units))
        months = await known_months(tgt, table) if table.month_column else set()
        applier = capture.ChangeApplier(src, tgt, table, batch_size=self.options.batch_size)
        applier.months = months
        for unit in table.units:
            state = states.get((table.name, unit[1]))
            if state is None:  # a partition the source gained since the copy began
                await checkpoint.begin(tgt, table, source=self.plan.source.label, totals={unit[1]: 0})
                state = (await checkpoint.load(tgt, self.plan.name))[(table.name, unit[1])]
            copier = UnitCopier(
                src, tgt, table, unit, batch_size=self.options.batch_size, months=months, applier=applier
            )

            def on_batch(rows: int) -> None:
                self.result.rows_copied += rows
                self.reporter.rows_copied(table.label, rows)

            if not await copier.run(state, on_batch, self.stop):
                return False
        await checkpoint.mark_copied(tgt, table)
        return True


async def migrate(
    source: Endpoint,
    targets: TargetLayout,
    services: list[ServiceSchema],
    options: MigrateOptions | None = None,
    *,
    reporter: Reporter | None = None,
    stop: asyncio.Event | None = None,
) -> list[ServiceResult]:
    """Moves the services' tables from the monolith to their own databases (see the module's docstring)."""
    options = options or MigrateOptions()
    reporter = reporter or QuietReporter()
    stop = stop or asyncio.Event()
    if options.prepare_targets:
        await prepare_targets(targets, services)
    plans = await build_plan(source, targets, services)
    for plan in plans:
        for table, reason in plan.skipped:
            reporter.note(f"{plan.name}.{table}: skipped, {reason}")
    slots = asyncio.Semaphore(max(1, options.jobs))
    try:
        async with asyncio.TaskGroup() as group:  # one service failing stops the others
            tasks = [group.create_task(ServiceMigration(plan, options, reporter, stop, slots).run()) for plan in plans]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure; the others were cancelled by it
    return [task.result() for task in tasks]
