"""Monthly partitions of ``analytics_events`` on PostgreSQL: made ahead of time, dropped after retention.

Each month is its own table, ``analytics_events_pYYYY_MM``, holding ``[first day, next first day)``
in UTC; dropping a month is a catalogue change instead of deleting millions of rows. The process
remembers which months exist, so that ingesting an event for an unusual month (a backfill)
creates its partition first, outside the request's transaction.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

import structlog

from services.analytics import repository
from services.kit.db import Database

log = structlog.get_logger("cerebrum.analytics.partitions")

PARENT = "analytics_events"
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")


def month_of(moment: datetime | date) -> date:
    """The first day of the (UTC) month a moment falls in."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return date(moment.year, moment.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: datetime | date, last: datetime | date) -> list[date]:
    """Every month from ``first``'s to ``last``'s, both included."""
    months, month, end = [], month_of(first), month_of(last)
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


def partition_name(month: date) -> str:
    return f"{PARENT}_p{month.year:04d}_{month.month:02d}"


def month_of_partition(name: str) -> date | None:
    match = _NAME.match(name)
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


def retention_start(now: datetime, retention_months: int) -> datetime:
    """The oldest moment kept: the first day of the month ``retention_months`` before this one (UTC)."""
    start = add_months(month_of(now), -retention_months)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


class PartitionKeeper:
    """Creates the months events need and drops those past retention (PostgreSQL; a no-op on SQLite)."""

    def __init__(self, db: Database, *, behind: int, ahead: int, retention_months: int) -> None:
        self.db = db
        self.behind = behind
        self.ahead = ahead
        self.retention_months = retention_months
        self.known: set[date] = set()
        self._lock = asyncio.Lock()

    @property
    def partitioned(self) -> bool:
        return not self.db.is_sqlite

    async def ensure(self, months: Iterable[date]) -> None:
        """Makes sure every given month has its partition (cheap when they are known to exist)."""
        if not self.partitioned:
            return
        missing = sorted(set(months) - self.known)
        if not missing:
            return
        async with self._lock:
            missing = sorted(set(missing) - self.known)
            if not missing:
                return
            async with self.db.engine.begin() as conn:
                await repository.create_partitions(
                    conn=conn, partitions={partition_name(m): (m, add_months(m, 1)) for m in missing}
                )
            self.known.update(missing)
            log.info("analytics_partitions_created", months=[m.isoformat() for m in missing])

    async def prepare(self, now: datetime) -> None:
        """Learns which months exist and creates this window's: a month behind to a few ahead."""
        if not self.partitioned:
            return
        async with self.db.engine.connect() as conn:
            names = await repository.list_partitions(conn=conn)
        self.known = {m for m in map(month_of_partition, names) if m is not None}
        current = month_of(now)
        await self.ensure(add_months(current, n) for n in range(-self.behind, self.ahead + 1))

    async def drop_expired(self, now: datetime) -> list[str]:
        """Drops the months that ended before the retention window; on SQLite deletes the old rows."""
        cutoff = retention_start(now, self.retention_months)
        async with self.db.engine.begin() as conn:
            if not self.partitioned:
                await repository.delete_events_before(conn=conn, cutoff=cutoff)
                await repository.delete_daily_learners_before(conn=conn, cutoff=cutoff.date())
                return []
            names = await repository.list_partitions(conn=conn)
            expired = [
                n for n in names if (m := month_of_partition(n)) is not None and add_months(m, 1) <= cutoff.date()
            ]
            await repository.drop_partitions(conn=conn, names=expired)
            await repository.delete_daily_learners_before(conn=conn, cutoff=cutoff.date())
        async with self._lock:
            self.known -= {m for m in map(month_of_partition, expired) if m is not None}
        if expired:
            log.info("analytics_partitions_dropped", partitions=expired, before=cutoff.isoformat())
        return expired
