"""A sample monolith to migrate: five services' tables in one schema, filled fast in SQL.

For trying the migration out (``cerebrum data sample``), its tests and its benchmark. The schema
comes from each service's metadata (the users outbox prefixed, as the monolith form holds it);
``analytics_events`` is range-partitioned by month, as the plan's week 9-10 makes it.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import Connection, MetaData, Table, text
from sqlalchemy.ext.asyncio import create_async_engine

from datamigration.endpoints import plain_dsn
from services.analytics.models import metadata as analytics_metadata
from services.courses.models import CoursesBase
from services.enrollments.models import EnrollmentsBase
from services.kit.db import async_url
from services.payments.models import PaymentsBase
from services.users.models import OUTBOX as USERS_OUTBOX
from services.users.models import UsersBase

SCHEMA = "monolith"
SERVICES = ("users", "courses", "enrollments", "payments", "analytics")
EVENT_MONTHS = [f"2025-{m:02d}-01" for m in range(1, 13)] + ["2026-01-01", "2026-02-01"]

_EVENTS_DDL = """
CREATE SEQUENCE analytics_events_seq;
CREATE TABLE analytics_events (
    seq bigint NOT NULL DEFAULT nextval('analytics_events_seq'),
    event_id uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_id uuid NOT NULL,
    type varchar(64) NOT NULL,
    course_id uuid,
    lesson_id uuid,
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_analytics_events PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE analytics_events_seq OWNED BY analytics_events.seq;
CREATE INDEX ix_analytics_events_seq ON analytics_events (seq);
"""


def _fill(users: int, events: int) -> list[str]:
    enrolled = users // 2
    spacing = 31_000_000 / events  # seconds between events: a year of them, whatever the volume
    return [
        f"""INSERT INTO users (id, email, password_hash, role, status, created_at, updated_at)
        SELECT gen_random_uuid(), 'student' || g || '@example.com', 'argon2id$' || md5(g::text),
               CASE WHEN g % 1000 = 0 THEN 'admin' ELSE 'student' END, 'active',
               timestamptz '2024-06-01' + g * interval '37 seconds',
               timestamptz '2024-06-01' + g * interval '41 seconds'
        FROM generate_series(1, {users}) g""",
        """INSERT INTO user_profiles (user_id, full_name, phone, grade, target_exam, city, school, updated_at)
        SELECT id, 'Student ' || substr(email, 8, 6), '+9198' || lpad((abs(hashtext(email)) % 100000000)::text, 8, '0'),
               (ARRAY['11', '12', 'dropper'])[1 + abs(hashtext(email)) % 3], 'NEET',
               CASE WHEN abs(hashtext(email)) % 7 = 0 THEN NULL ELSE 'Kota' END, NULL, updated_at
        FROM users""",
        """INSERT INTO sessions (id, family_id, user_id, token_hash, created_at, expires_at, client_ip, user_agent)
        SELECT gen_random_uuid(), gen_random_uuid(), id, md5(id::text || 'refresh'), created_at,
               created_at + interval '30 days', '10.1.2.3', 'Mozilla/5.0 (pytest)'
        FROM users WHERE abs(hashtext(id::text)) % 5 = 0""",
        """INSERT INTO auth_logs (user_id, email, event, outcome, reason, client_ip, user_agent, created_at)
        SELECT id, email, 'login', CASE WHEN abs(hashtext(email)) % 9 = 0 THEN 'failure' ELSE 'success' END,
               NULL, '10.1.2.3', 'Mozilla/5.0 (pytest)', created_at FROM users""",
        """INSERT INTO courses (id, slug, title, description, subject, grade, price_paise, currency, capacity,
                                seats_taken, is_active, is_published, created_at, updated_at)
        SELECT gen_random_uuid(), 'neet-biology-' || g, 'NEET Biology ' || g, 'Unit ' || g || ' — cells, genetics',
               'biology', (ARRAY['11', '12'])[1 + g % 2], 499900 + g, 'INR', 100000, 0, true, true,
               timestamptz '2024-01-01', timestamptz '2024-01-01'
        FROM generate_series(1, 200) g""",
        """INSERT INTO lessons (id, course_id, position, title, duration_minutes, summary)
        SELECT gen_random_uuid(), c.id, p, 'Lesson ' || p, 30 + p, '' FROM courses c, generate_series(1, 10) p""",
        """INSERT INTO curriculum (grade, unit_position, unit_title, topic_position, topic_title)
        SELECT (ARRAY['11', '12'])[1 + g % 2], g / 10, 'Unit ' || g / 10, g, 'Topic ' || g
        FROM generate_series(1, 100) g""",
        """INSERT INTO course_search (course_id, document)
        SELECT id, to_tsvector('english', title || ' ' || description) FROM courses""",
        f"""INSERT INTO enrollments (id, user_id, course_id, saga_id, course_title, status, amount_paise, currency,
                                    lesson_ids, created_at, updated_at, confirmed_at)
        SELECT gen_random_uuid(), u.id, c.id, gen_random_uuid(), c.title, 'confirmed', c.price_paise, 'INR',
               json_build_array(u.n, 'lesson-' || u.n), u.created_at, u.created_at, u.created_at + interval '1 minute'
        FROM (SELECT id, created_at, row_number() OVER (ORDER BY email) AS n FROM users) u
        JOIN (SELECT id, title, price_paise, row_number() OVER (ORDER BY slug) - 1 AS k FROM courses) c
          ON c.k = u.n % 200
        WHERE u.n <= {enrolled}""",
        """INSERT INTO enrollment_progress (enrollment_id, lesson_id, completed, time_spent_seconds, updated_at)
        SELECT id, gen_random_uuid(), true, 600, created_at FROM enrollments""",
        f"""INSERT INTO orders (id, user_id, enrollment_id, course_id, amount_paise, currency, description, provider,
                               provider_order_id, status, created_at, expires_at, updated_at)
        SELECT gen_random_uuid(), user_id, id, course_id, amount_paise, 'INR', course_title, 'razorpay',
               'order_' || md5(id::text), 'paid', created_at, created_at + interval '15 minutes', created_at
        FROM enrollments LIMIT {max(1, enrolled // 2)}""",
        """INSERT INTO payments (id, order_id, user_id, provider_payment_id, amount_paise, currency, status,
                              captured_at)
        SELECT gen_random_uuid(), id, user_id, 'pay_' || md5(id::text), amount_paise, 'INR', 'captured', created_at
        FROM orders""",
        f"""INSERT INTO analytics_events (event_id, occurred_at, user_id, type, course_id, lesson_id, properties,
                                         ingested_at)
        SELECT gen_random_uuid(), timestamptz '2025-01-01' + (g * {spacing}) * interval '1 second', gen_random_uuid(),
               (ARRAY['lesson.completed', 'assessment.submitted', 'video.watched'])[1 + g % 3], NULL, NULL,
               jsonb_build_object('score', g % 100, 'seconds', g % 600, 'device', 'android'),
               timestamptz '2025-01-01' + (g * {spacing} + 2) * interval '1 second'
        FROM generate_series(1, {events}) g""",
        "VACUUM ANALYZE",
    ]


def _create_all(connection: Connection, metadata: MetaData, tables: list[Table] | None) -> None:
    metadata.create_all(connection, tables=tables)


async def build_monolith(url: str, *, users: int, events: int) -> None:
    """Creates the monolith schema in the (empty) database at ``url`` and fills it."""
    engine = create_async_engine(async_url(plain_dsn(url)), connect_args={"server_settings": {"search_path": SCHEMA}})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            # Service-local tables stay out (the users outbox comes in prefixed), and the events
            # table is made partitioned below.
            left_out = ("outbox", "inbox", "analytics_events")
            for metadata in (
                UsersBase.metadata,
                CoursesBase.metadata,
                EnrollmentsBase.metadata,
                PaymentsBase.metadata,
                analytics_metadata,
            ):
                tables = [t for t in metadata.sorted_tables if t.name not in left_out]
                await conn.run_sync(_create_all, metadata, tables)
            prefixed = MetaData()
            USERS_OUTBOX.to_metadata(prefixed, name="users_outbox")
            await conn.run_sync(_create_all, prefixed, None)
            await conn.execute(
                text(
                    "CREATE TABLE course_search (course_id uuid PRIMARY KEY REFERENCES courses (id) ON DELETE CASCADE,"
                    " document tsvector NOT NULL)"
                )
            )
    finally:
        await engine.dispose()
    conn2 = await asyncpg.connect(plain_dsn(url), server_settings={"search_path": SCHEMA})
    try:
        await conn2.execute(_EVENTS_DDL)
        for start, end in zip(EVENT_MONTHS, EVENT_MONTHS[1:], strict=False):
            name = f"analytics_events_p{start[:4]}_{start[5:7]}"
            await conn2.execute(
                f"CREATE TABLE {name} PARTITION OF analytics_events FOR VALUES FROM ('{start}') TO ('{end}')"
            )
        for statement in _fill(users, events):
            await conn2.execute(statement)
        await conn2.execute(
            "INSERT INTO users_outbox (id, event_type, payload, headers, created_at) "
            "SELECT gen_random_uuid(), 'user.registered', json_build_object('user_id', id), '{}'::json, created_at "
            "FROM users LIMIT 500"
        )
    finally:
        await conn2.close()
