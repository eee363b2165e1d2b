"""The parts that need no database: what is planned, how keys and rows are written in SQL, the gate."""

from __future__ import annotations

import pytest

from datamigration import PlanError, TargetLayout, phase3_gate, service_schemas
from datamigration.catalog import Column, TableInfo, UniqueIndex
from datamigration.endpoints import Endpoint, plain_dsn
from datamigration.plan import TablePlan, choose_key, source_name
from datamigration.sql import canonical_row, key_from_json, key_params, same_row
from datamigration.verify import TableReport, _bucket_mask, build_report


def _table(**overrides: object) -> TablePlan:
    fields: dict[str, object] = dict(
        service="analytics",
        name="analytics_events",
        source_schema="monolith",
        source_name="analytics_events",
        target_schema="analytics",
        columns=("seq", "event_id", "occurred_at", "properties"),
        key=("event_id", "occurred_at"),
        key_types=("uuid", "timestamp with time zone"),
        json_columns=frozenset({"properties"}),
        units=(("monolith", "analytics_events_p2025_01"),),
        binary=True,
    )
    fields.update(overrides)
    return TablePlan(**fields)  # type: ignore[arg-type]


def _info(primary: tuple[str, ...], unique: tuple[UniqueIndex, ...] = ()) -> TableInfo:
    return TableInfo("s", "t", "r", (Column("a", "uuid", False),), primary, unique, None)


def test_services_list_their_tables_parents_first() -> None:
    users, courses = service_schemas(["users", "courses"])
    assert users.tables.index("users") < users.tables.index("user_profiles") < len(users.tables)
    assert users.tables.index("users") < users.tables.index("sessions")
    assert courses.tables[-1] == "course_search"  # made by hand in its migration, moved too
    with pytest.raises(PlanError, match="unknown service"):
        service_schemas(["billing"])


def test_outbox_and_inbox_are_looked_for_under_the_service_prefix() -> None:
    assert source_name("users", "outbox") == "users_outbox"
    assert source_name("analytics", "inbox") == "analytics_inbox"
    assert source_name("users", "users") == "users"


def test_the_key_is_one_both_sides_hold_unique() -> None:
    # A monolith whose events are keyed by seq, unique on (event_id, occurred_at): the target's key wins.
    source = _info(("seq",), (UniqueIndex(("event_id", "occurred_at")),))
    target = _info(("event_id", "occurred_at"))
    assert choose_key(source, target) == ("event_id", "occurred_at")
    with pytest.raises(PlanError):
        choose_key(_info(("seq",), (UniqueIndex(("email",), "status = 'active'"),)), _info(("email",)))


def test_targets_are_a_schema_per_service_or_a_database_per_service() -> None:
    assert TargetLayout("postgresql://h/cerebrum").for_service("users") == Endpoint("postgresql://h/cerebrum", "users")
    assert TargetLayout("postgresql://h/cerebrum_{service}").for_service("payments") == Endpoint(
        "postgresql://h/cerebrum_payments", "payments"
    )
    assert plain_dsn("postgresql+asyncpg://u@h:5432/d") == "postgresql://u@h:5432/d"
    with pytest.raises(ValueError, match="PostgreSQL"):
        plain_dsn("sqlite+aiosqlite:///data/users.db")


def test_keys_travel_as_text_and_rows_compare_by_content() -> None:
    table = _table()
    assert key_params(table, 3) == "($3::text::uuid, $4::text::timestamp with time zone)"
    assert key_from_json(table, "j") == (
        '(j->>0)::uuid AS "event_id", (j->>1)::timestamp with time zone AS "occurred_at"'
    )
    # Columns by name, whatever their order in either schema; JSON compared as jsonb.
    assert canonical_row(table, "t") == (
        'json_build_array(t."event_id", t."occurred_at", t."properties"::jsonb, t."seq")::text'
    )
    assert 's."properties"::jsonb' in same_row(table, "s", "t")


def test_buckets_grow_with_the_table() -> None:
    assert _bucket_mask(10) == 0
    assert _bucket_mask(1_000_000) == 1023
    assert _bucket_mask(10**9) == 4095


def test_the_gate_passes_only_a_report_without_differences() -> None:
    same = TableReport("users", "users", 3, 3, "00ab", "00ab")
    assert phase3_gate(build_report([same])).passed
    assert not phase3_gate(build_report([])).passed
    differing = TableReport("users", "users", 3, 3, "00ab", "00ac", ["7c1f…"], 1)
    report = build_report([same, differing])
    assert report["total_differences"] == 1
    verdict = phase3_gate(report)
    assert not verdict.passed and "users.users: checksums differ" in verdict.reasons


def test_the_tool_moves_the_services_the_platform_registers() -> None:
    from cerebrum.registry import SERVICES
    from datamigration.services import SERVICE_MODELS

    assert list(SERVICE_MODELS) == list(SERVICES)
    for name, (metadata, migrations) in SERVICE_MODELS.items():
        assert metadata is SERVICES[name].metadata
        assert migrations == SERVICES[name].migrations and (migrations / "env.py").exists()
