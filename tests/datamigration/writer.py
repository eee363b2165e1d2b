"""The monolith's users, still writing while it is moved: inserts, updates, deletes and swaps.

Each operation is one short transaction, as the monolith's requests are. When the cut-over
fences a service's tables, its writes fail with SQLSTATE 25006 (read-only) and the writer stops
writing to that service; a write that got no error is acknowledged and must reach the target.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.datamigration.monolith import SCHEMA


class MonolithWriter:
    def __init__(self, url: str, *, seed: int = 7, pause_s: float = 0.005, swaps: bool = True) -> None:
        self.url = url
        self.random = random.Random(seed)
        self.pause_s = pause_s
        self.swaps = swaps
        self.stop = asyncio.Event()
        self.acknowledged = 0
        self.fenced: set[str] = set()
        self.inserted_users: list[uuid.UUID] = []
        self.deleted_users: set[uuid.UUID] = set()
        self.conn: asyncpg.Connection

    async def run(self) -> None:
        self.conn = await asyncpg.connect(self.url, server_settings={"search_path": SCHEMA})
        try:
            self.users = [r[0] for r in await self.conn.fetch("SELECT id FROM users TABLESAMPLE SYSTEM (5) LIMIT 3000")]
            self.events = [
                tuple(r) for r in await self.conn.fetch("SELECT event_id, occurred_at FROM analytics_events LIMIT 3000")
            ]
            self.enrollments = [r[0] for r in await self.conn.fetch("SELECT id FROM enrollments LIMIT 2000")]
            self.courses = [r[0] for r in await self.conn.fetch("SELECT id FROM courses")]
            operations: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("users", self.register),
                ("users", self.update_user),
                ("users", self.delete_user),
                *([("users", self.swap_emails)] if self.swaps else []),
                ("analytics", self.ingest_events),
                ("analytics", self.update_event),
                ("analytics", self.delete_event),
                ("enrollments", self.enrol),
                ("enrollments", self.update_enrollment),
                ("payments", self.pay),
                ("courses", self.take_seat),
            ]
            services = {s for s, _ in operations}
            while not self.stop.is_set() and self.fenced != services:
                service, operation = self.random.choice(operations)
                if service in self.fenced:
                    continue
                try:
                    async with self.conn.transaction():
                        await operation()
                    self.acknowledged += 1
                except asyncpg.ReadOnlySQLTransactionError:
                    self.fenced.add(service)
                except (asyncpg.DeadlockDetectedError, asyncpg.UniqueViolationError):
                    pass  # the monolith would retry or refuse this request: nothing was acknowledged
                await asyncio.sleep(self.pause_s)
        finally:
            await self.conn.close()

    def _user(self) -> uuid.UUID:
        return self.random.choice(self.users)

    async def register(self) -> None:
        user_id, now = uuid.uuid4(), datetime.now(UTC)
        await self.conn.execute(
            "INSERT INTO users (id, email, password_hash, role, status, created_at, updated_at) "
            "VALUES ($1, $2, 'argon2id$x', 'student', 'active', $3, $3)",
            user_id,
            f"new-{user_id.hex[:12]}@example.com",
            now,
        )
        await self.conn.execute(
            "INSERT INTO user_profiles (user_id, full_name, city, updated_at) VALUES ($1, 'New Student', 'Delhi', $2)",
            user_id,
            now,
        )
        await self.conn.execute(
            "INSERT INTO auth_logs (user_id, email, event, outcome, created_at) "
            "VALUES ($1, 'new@example.com', 'register', 'success', $2)",
            user_id,
            now,
        )
        self.users.append(user_id)
        self.inserted_users.append(user_id)

    async def update_user(self) -> None:
        user_id = self._user()
        await self.conn.execute(
            "UPDATE users SET status = $2, updated_at = now() WHERE id = $1",
            user_id,
            self.random.choice(["active", "suspended"]),
        )
        await self.conn.execute(
            "UPDATE user_profiles SET school = 'Allen', updated_at = now() WHERE user_id = $1", user_id
        )

    async def delete_user(self) -> None:
        user_id = self._user()
        await self.conn.execute("DELETE FROM users WHERE id = $1", user_id)  # profile and sessions cascade
        self.users.remove(user_id)
        self.deleted_users.add(user_id)

    async def swap_emails(self) -> None:
        a, b = self._user(), self._user()
        if a == b:
            return
        emails = dict(await self.conn.fetch("SELECT id, email FROM users WHERE id = ANY($1::uuid[])", [a, b]))
        if len(emails) < 2:
            return
        await self.conn.execute("UPDATE users SET email = 'swap-' || id WHERE id = $1", a)
        await self.conn.execute("UPDATE users SET email = $2 WHERE id = $1", b, emails[a])
        await self.conn.execute("UPDATE users SET email = $2 WHERE id = $1", a, emails[b])

    async def ingest_events(self) -> None:
        # Mostly this month's, sometimes a month the target has no partition for yet.
        base = datetime(2026, 1, 1, tzinfo=UTC) if self.random.random() < 0.7 else datetime(2025, 3, 1, tzinfo=UTC)
        rows = [
            (uuid.uuid4(), base + timedelta(seconds=self.random.randrange(2_000_000)), uuid.uuid4(), "video.watched")
            for _ in range(20)
        ]
        await self.conn.executemany(
            "INSERT INTO analytics_events (event_id, occurred_at, user_id, type, properties) "
            "VALUES ($1, $2, $3, $4, '{\"live\": true}')",
            rows,
        )
        self.events.extend((r[0], r[1]) for r in rows[:2])

    async def update_event(self) -> None:
        event_id, occurred_at = self.random.choice(self.events)
        await self.conn.execute(
            "UPDATE analytics_events SET properties = properties || '{\"corrected\": 1}' "
            "WHERE event_id = $1 AND occurred_at = $2",
            event_id,
            occurred_at,
        )

    async def delete_event(self) -> None:
        key = self.random.choice(self.events)
        await self.conn.execute("DELETE FROM analytics_events WHERE event_id = $1 AND occurred_at = $2", *key)
        self.events.remove(key)

    async def enrol(self) -> None:
        enrollment_id = uuid.uuid4()
        await self.conn.execute(
            "INSERT INTO enrollments (id, user_id, course_id, saga_id, course_title, status, amount_paise, currency, "
            "lesson_ids, created_at, updated_at) VALUES ($1, $2, $3, $4, 'NEET Biology', 'pending', 499900, 'INR', "
            '\'["l1", "l2"]\', now(), now())',
            enrollment_id,
            uuid.uuid4(),
            self.random.choice(self.courses),
            uuid.uuid4(),
        )
        self.enrollments.append(enrollment_id)

    async def update_enrollment(self) -> None:
        await self.conn.execute(
            "UPDATE enrollments SET status = 'completed', completed_at = now(), updated_at = now(), "
            'lesson_ids = \'["l1",  "l2", "l3"]\' WHERE id = $1',
            self.random.choice(self.enrollments),
        )

    async def pay(self) -> None:
        order_id = uuid.uuid4()
        await self.conn.execute(
            "INSERT INTO orders (id, user_id, amount_paise, currency, description, provider, provider_order_id, "
            "status, created_at, expires_at, updated_at) "
            "VALUES ($1, $2, 99900, 'INR', 'Mock test', 'razorpay', $3, 'paid', "
            "now(), now() + interval '15 minutes', now())",
            order_id,
            self._user(),
            f"order_{order_id.hex}",
        )
        await self.conn.execute(
            "INSERT INTO payments (id, order_id, user_id, provider_payment_id, amount_paise, currency, status, "
            "captured_at) VALUES ($1, $2, $3, $4, 99900, 'INR', 'captured', now())",
            uuid.uuid4(),
            order_id,
            self._user(),
            f"pay_{order_id.hex}",
        )

    async def take_seat(self) -> None:
        await self.conn.execute(
            "UPDATE courses SET seats_taken = seats_taken + 1, updated_at = now() WHERE id = $1",
            self.random.choice(self.courses),
        )
