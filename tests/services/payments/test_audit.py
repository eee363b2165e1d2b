"""The audit log keeps every row: the database refuses to change or remove one."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.services.payments.conftest import PaymentsApi


async def _refuses_changes(api: PaymentsApi) -> None:
    await api.create_order()
    assert len(await api.audit()) == 1
    for statement in ("UPDATE payment_audit_log SET outcome = 'nothing'", "DELETE FROM payment_audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with api.app.state.kit.db.session_scope() as db:
                await db.execute(text(statement))
    assert [e.outcome for e in await api.audit()] == ["created"]


@pytest.mark.integration
async def test_postgresql_refuses_to_change_the_audit_log(payments: PaymentsApi) -> None:
    await _refuses_changes(payments)


async def test_sqlite_refuses_to_change_the_audit_log(embedded_payments: PaymentsApi) -> None:
    await _refuses_changes(embedded_payments)
