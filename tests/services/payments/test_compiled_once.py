"""An order, its checkout, its verification and the provider's webhook are served from SQLAlchemy's
compiled cache after the first (tests/sql_cache.py)."""

from __future__ import annotations

import pytest

from tests.services.payments.conftest import PaymentsApi
from tests.sql_cache import compiled_in_this_task

pytestmark = pytest.mark.integration


async def test_a_second_order_paid_and_verified_compiles_no_statement(payments: PaymentsApi) -> None:
    for _ in range(2):  # the first order's requests compile what the path needs
        with compiled_in_this_task(payments.app.state.kit.db.engine.sync_engine) as compiled:
            order = await payments.create_order()
            checkout = await payments.checkout(order["order_id"])
            verified = await payments.verify(checkout)
            webhook = await payments.deliver(checkout["webhook"])
        assert verified.status_code == 200 and verified.json()["order_status"] == "paid", verified.text
        assert webhook.json() == {"status": "processed"}
    assert compiled == []
