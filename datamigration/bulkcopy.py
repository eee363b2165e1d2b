"""The bulk copy: keyset pagination on the key, each batch streamed COPY → COPY between the databases.

Rows travel as COPY data (binary when both sides have the same column types) from the source
connection straight into the target's ``COPY FROM``, never decoded in Python. Each batch and
its checkpoint commit together in the target, so a killed copy resumes after the last batch.
Rows that change behind the copy (in a range already copied) are the change capture's work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import date

import asyncpg

from datamigration import checkpoint, sql
from datamigration.capture import ChangeApplier
from datamigration.checkpoint import Checkpoint
from datamigration.endpoints import qname
from datamigration.partitions import ensure_months, months_in
from datamigration.plan import TablePlan

NO_PARTITION = "23514"
"""``no partition of relation … found for row``: a month the target does not have yet."""


async def count_rows(conn: asyncpg.Connection, relation: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {relation}"))


async def stream(src: asyncpg.Connection, tgt: asyncpg.Connection, table: TablePlan, query: str, *args: object) -> int:
    """Copies the rows a query returns into the target table; returns how many."""
    fmt = "binary" if table.binary else "text"
    pipe: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=32)

    async def produce() -> None:
        try:
            await src.copy_from_query(query, *args, output=pipe.put, format=fmt)
        except asyncio.CancelledError:
            raise
        except BaseException:
            await pipe.put(None)
            raise
        await pipe.put(None)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await pipe.get()) is not None:
            yield chunk

    producer = asyncio.create_task(produce())
    try:
        status = await tgt.copy_to_table(
            table.name, schema_name=table.target_schema, columns=list(table.columns), source=chunks(), format=fmt
        )
    except BaseException:
        producer.cancel()
        with suppress(BaseException):
            await producer
        raise
    await producer  # a failed read fails the batch: its transaction rolls back
    return int(status.split()[-1])


class UnitCopier:
    """Copies one source relation (a table or one of its partitions) in batches, from its checkpoint on."""

    def __init__(
        self,
        src: asyncpg.Connection,
        tgt: asyncpg.Connection,
        table: TablePlan,
        unit: tuple[str, str],
        *,
        batch_size: int,
        months: set[date],
        applier: ChangeApplier,
    ) -> None:
        self.src, self.tgt, self.table, self.applier = src, tgt, table, applier
        self.relation = qname(*unit)
        self.unit = unit[1]
        self.batch_size = batch_size
        self.months = months

    async def run(self, state: Checkpoint, on_batch: Callable[[int], None], stop: asyncio.Event | None) -> bool:
        """Copies until the unit is done (True) or ``stop`` is set between batches (False)."""
        if state.done:
            return True
        if self.table.month_column:
            await ensure_months(self.tgt, self.table, await self._months(), self.months)
        last = state.last_key
        while True:
            if stop is not None and stop.is_set():
                return False
            upper = await self._upper_bound(last)
            rows = await self._batch(last, upper)
            on_batch(rows)
            if upper is None:
                return True
            last = upper

    async def _months(self, where: str = "", *args: object) -> set[date]:
        assert self.table.month_column is not None
        return await months_in(self.src, self.relation, self.table.month_column, where, *args)

    def _range(self, last: list[str] | None, upper: list[str] | None) -> tuple[str, list[object]]:
        keys, n = sql.key_columns(self.table), len(self.table.key)
        conditions: list[str] = []
        args: list[object] = []
        if last is not None:
            conditions.append(f"({keys}) > {sql.key_params(self.table, 1)}")
            args.extend(last)
        if upper is not None:
            conditions.append(f"({keys}) <= {sql.key_params(self.table, len(args) + 1)}")
            args.extend(upper)
        assert len(args) in (0, n, 2 * n)
        return ("WHERE " + " AND ".join(conditions) if conditions else ""), args

    async def _upper_bound(self, last: list[str] | None) -> list[str] | None:
        """The key of the batch's last row, or None when fewer than a batch remain."""
        where, args = self._range(last, None)
        row = await self.src.fetchrow(
            # Qualified: a bare name in ORDER BY would sort by the text output column, not the key.
            f"SELECT {sql.key_as_text(self.table, 't')} FROM {self.relation} t {where} "
            f"ORDER BY {sql.key_columns(self.table, 't')} OFFSET {self.batch_size - 1} LIMIT 1",
            *args,
        )
        return list(row) if row is not None else None

    async def _batch(self, last: list[str] | None, upper: list[str] | None) -> int:
        where, args = self._range(last, upper)
        query = f"SELECT {sql.columns(self.table)} FROM {self.relation} {where}"
        for attempt in range(3):
            try:
                async with self.tgt.transaction():
                    rows = await stream(self.src, self.tgt, self.table, query, *args)
                    done = upper is None
                    await checkpoint.save_batch(
                        self.tgt, self.table, self.unit, last_key=last if done else upper, rows=rows, done=done
                    )
                return rows
            except asyncpg.UniqueViolationError:
                # A row here holds a unique value that a row copied earlier held until a write moved
                # it (two students swapped emails), or the batch is partly in already: apply the
                # range row by row, the way changes are replayed, which brings the stale row along.
                return await self._replay_range(where, args, last, upper)
            except asyncpg.PostgresError as exc:
                # A row of a month that appeared after the unit started: make the month, try again.
                if exc.sqlstate != NO_PARTITION or not self.table.month_column or attempt == 2:
                    raise
                await ensure_months(self.tgt, self.table, await self._months(where, *args), self.months)
        raise AssertionError("unreachable")

    async def _replay_range(
        self, where: str, args: list[object], last: list[str] | None, upper: list[str] | None
    ) -> int:
        keys = [
            r[0]
            for r in await self.src.fetch(
                f"SELECT {sql.key_json(self.table, 't')}::text FROM {self.relation} t {where}", *args
            )
        ]
        inserted = (await self.applier.apply_keys(keys)).inserted if keys else 0
        done = upper is None
        async with self.tgt.transaction():
            await checkpoint.save_batch(
                self.tgt, self.table, self.unit, last_key=last if done else upper, rows=inserted, done=done
            )
        return inserted
