"""Accepted against delivered, by SQL on each service's own schema: nothing lost, nothing twice.

*Accepted* is what the platform told a student it had done (the load's ``accepted.jsonl`` and
``paid.jsonl``); *delivered* is what every service downstream did about it: the enrolment row,
one captured payment per paid order, one ``payment.succeeded`` per order in the payments outbox,
that event in the enrollments and communication inboxes, one confirmation per paid enrolment
with its event in the communication inbox, and one message per event. Besides: every outbox
drained, no saga left half-way, and every seat held exactly when its enrolment still wants it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

FORWARD_STATES = ("validating_user", "checking_course", "reserving_seat", "creating_enrollment", "creating_order")
RUNNING_STATES = (*FORWARD_STATES, "compensating")
WANTS_SEAT = ("creating_enrollment", "creating_order", "awaiting_payment", "confirmed")
GAVE_SEAT_BACK = ("compensated", "cancelled")


def _uuids(values: Sequence[Any]) -> list[uuid.UUID]:
    return [uuid.UUID(str(v)) for v in values if v]


async def _outbox_backlog(conn: asyncpg.Connection, older_than: float = 0.0) -> dict[str, int]:
    schemas = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' ORDER BY table_schema"
    )
    backlog = {}
    for row in schemas:
        schema = row["table_schema"]
        backlog[schema] = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL '
            "AND created_at < now() - make_interval(secs => $1)",
            older_than,
        )
    return backlog


async def _events(conn: asyncpg.Connection, schema: str, event_type: str, key: str, values: list[str]) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT id, payload->'data'->>'{key}' AS ref, published_at FROM \"{schema}\".outbox "
            f"WHERE event_type = $1 AND payload->'data'->>'{key}' = ANY($2::text[])",
            event_type,
            values,
        )
    )


async def _handled(conn: asyncpg.Connection, schema: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await conn.fetch(f'SELECT event_id FROM "{schema}".inbox WHERE event_id = ANY($1::uuid[])', event_ids)
    return {row["event_id"] for row in rows}


async def _messages(conn: asyncpg.Connection, event_ids: list[uuid.UUID]) -> dict[str, int]:
    if not event_ids:
        return {}
    rows = await conn.fetch(
        "SELECT split_part(dedup_key, ':', 2) AS event_id, count(*) AS n FROM communication.communication_logs "
        "WHERE dedup_key LIKE 'event:%' AND split_part(dedup_key, ':', 2) = ANY($1::text[]) GROUP BY 1",
        [str(e) for e in event_ids],
    )
    return {row["event_id"]: row["n"] for row in rows}


def _per_ref(rows: list[Any], refs: list[str]) -> tuple[list[str], list[str]]:
    """Refs with no event, and refs with more than one."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["ref"]] = counts.get(row["ref"], 0) + 1
    return [r for r in refs if counts.get(r, 0) == 0], [r for r, n in counts.items() if n > 1]


async def reconcile_async(
    database_url: str, *, accepted: list[dict[str, Any]], paid: list[dict[str, Any]]
) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return await _reconcile(conn, accepted=accepted, paid=paid)
    finally:
        await conn.close()


async def _reconcile(
    conn: asyncpg.Connection, *, accepted: list[dict[str, Any]], paid: list[dict[str, Any]]
) -> dict[str, Any]:
    enrolment_ids = _uuids([a["enrollment_id"] for a in accepted])
    rows = await conn.fetch("SELECT id, status FROM enrollments.enrollments WHERE id = ANY($1::uuid[])", enrolment_ids)
    found = {row["id"]: row["status"] for row in rows}
    lost = [str(e) for e in enrolment_ids if e not in found]

    orders = [str(p["order_id"]) for p in paid]
    paid_enrolments = [str(p["enrollment_id"]) for p in paid]
    captured = await conn.fetch(
        "SELECT order_id::text AS ref, count(*) AS n FROM payments.payments "
        "WHERE order_id = ANY($1::uuid[]) AND status = 'captured' GROUP BY order_id",
        _uuids(orders),
    )
    captures = {row["ref"]: row["n"] for row in captured}
    payment_events = await _events(conn, "payments", "payment.succeeded", "order_id", orders)
    no_payment_event, twice_payment_event = _per_ref(payment_events, orders)
    payment_event_ids = [row["id"] for row in payment_events]
    confirmed_events = await _events(conn, "enrollments", "enrollment.confirmed", "enrollment_id", paid_enrolments)
    no_confirmation, twice_confirmation = _per_ref(confirmed_events, paid_enrolments)
    confirmed_event_ids = [row["id"] for row in confirmed_events]
    in_enrollments = await _handled(conn, "enrollments", payment_event_ids)
    in_communication = await _handled(conn, "communication", payment_event_ids + confirmed_event_ids)
    messages = await _messages(conn, payment_event_ids + confirmed_event_ids)
    not_confirmed = [e for e in paid_enrolments if found.get(uuid.UUID(e)) != "confirmed"]

    stuck = await conn.fetchval(
        "SELECT count(*) FROM enrollments.enrollment_sagas WHERE state = ANY($1::text[]) "
        "AND updated_at < now() - interval '2 seconds'",
        list(RUNNING_STATES),
    )
    leaked = await conn.fetchval(
        "SELECT count(*) FROM courses.seat_reservations r JOIN enrollments.enrollment_sagas s "
        "ON s.id = r.reservation_id WHERE r.status = 'held' AND s.state = ANY($1::text[])",
        list(GAVE_SEAT_BACK),
    )
    seatless = await conn.fetchval(
        "SELECT count(*) FROM enrollments.enrollment_sagas s LEFT JOIN courses.seat_reservations r "
        "ON r.reservation_id = s.id WHERE s.state = ANY($1::text[]) AND s.state <> 'creating_enrollment' "
        "AND (r.status IS NULL OR r.status <> 'held')",
        list(WANTS_SEAT),
    )
    miscounted = await conn.fetch(
        "SELECT c.id::text AS course, c.seats_taken, count(r.reservation_id) AS held FROM courses.courses c "
        "LEFT JOIN courses.seat_reservations r ON r.course_id = c.id AND r.status = 'held' "
        "GROUP BY c.id, c.seats_taken HAVING c.seats_taken <> count(r.reservation_id)"
    )
    half_written = await conn.fetchval(
        "SELECT count(*) FROM enrollments.enrollments e JOIN enrollments.enrollment_sagas s ON s.id = e.saga_id "
        "WHERE e.status = 'pending_payment' AND s.state IN ('compensated', 'cancelled')"
    )
    backlog = await _outbox_backlog(conn)

    problems = {
        "lost_enrolments": lost,
        "payments_missing": [o for o in orders if captures.get(o, 0) == 0],
        "payments_duplicated": [o for o, n in captures.items() if n > 1],
        "payment_events_missing": no_payment_event,
        "payment_events_duplicated": twice_payment_event,
        "payment_events_undelivered_to_enrollments": [str(e) for e in payment_event_ids if e not in in_enrollments],
        "events_undelivered_to_communication": [
            str(e) for e in payment_event_ids + confirmed_event_ids if e not in in_communication
        ],
        "enrolments_not_confirmed": not_confirmed,
        "confirmations_missing": no_confirmation,
        "confirmations_duplicated": twice_confirmation,
        "notifications_missing": [
            str(e) for e in payment_event_ids + confirmed_event_ids if messages.get(str(e), 0) == 0
        ],
        "notifications_duplicated": [e for e, n in messages.items() if n > 1],
        "outbox_backlog": {schema: n for schema, n in backlog.items() if n},
        "sagas_half_way": stuck,
        "seats_leaked": leaked,
        "seats_lost": seatless,
        "seat_counts_wrong": [dict(row) for row in miscounted],
        "enrolments_half_written": half_written,
    }
    ok = not any(problems.values())
    return {
        "ok": ok,
        "accepted": len(enrolment_ids),
        "found": len(found),
        "paid": len(orders),
        "payment_events": len(payment_event_ids),
        "confirmations": len(confirmed_event_ids),
        "delivered_to_enrollments": len(in_enrollments),
        "delivered_to_communication": len(in_communication),
        "notifications": sum(messages.values()),
        "problems": {k: v for k, v in problems.items() if v},
    }


def reconcile(database_url: str, *, accepted: list[dict[str, Any]], paid: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs every check; ``ok`` is True only when nothing was lost, doubled or left half-way."""
    return asyncio.run(reconcile_async(database_url, accepted=accepted, paid=paid))


async def backlog_async(database_url: str, older_than: float = 0.0) -> dict[str, int]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return await _outbox_backlog(conn, older_than)
    finally:
        await conn.close()


def outbox_backlog(database_url: str, *, older_than: float = 0.0) -> dict[str, int]:
    """Unpublished events per service schema (only those waiting longer than ``older_than`` seconds)."""
    return asyncio.run(backlog_async(database_url, older_than))
