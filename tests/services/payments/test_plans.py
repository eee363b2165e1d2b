"""The plan catalogue: the server prices a subscription, and only admins change the catalogue."""

from __future__ import annotations

import uuid

import pytest

from tests.services.payments.conftest import PROBLEM, PaymentsApi

pytestmark = pytest.mark.integration


async def _subscribe(payments: PaymentsApi, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    headers = {**payments.student, "Idempotency-Key": uuid.uuid4().hex}
    response = await payments.client.post("/subscriptions/create", json=body, headers=headers)
    return response.status_code, response.json()


async def test_the_plan_sets_the_price_and_a_client_amount_is_refused(payments: PaymentsApi) -> None:
    listed = await payments.client.get("/subscriptions/plans")
    assert listed.status_code == 200
    catalogue = {p["code"]: p for p in listed.json()}
    assert (catalogue["neet-yearly"]["amount_paise"], catalogue["neet-yearly"]["period"]) == (999_900, "yearly")

    status, subscription = await _subscribe(payments, {"plan": "neet-yearly"})
    assert status == 201, subscription
    assert (subscription["amount_paise"], subscription["period"], subscription["plan"]) == (
        999_900,
        "yearly",
        "neet-yearly",
    )
    assert subscription["order"]["amount_paise"] == 999_900  # type: ignore[index]

    status, refused = await _subscribe(payments, {"plan": "neet-yearly", "amount_paise": 1, "period": "yearly"})
    assert status == 422 and "amount_paise" in str(refused["errors"])
    status, unknown = await _subscribe(payments, {"plan": "neet-lifetime"})
    assert status == 404 and str(unknown["type"]).endswith("plan-not-found")
    assert await payments.count("subscriptions") == 1 and await payments.count("orders") == 1


async def test_only_admins_manage_plans_and_a_retired_plan_takes_no_subscriptions(payments: PaymentsApi) -> None:
    plan = {"code": "neet-crash-monthly", "name": "NEET crash course", "amount_paise": 49_900, "period": "monthly"}
    for caller, expected in ((None, 401), (payments.student, 403)):
        headers = caller or {}
        assert (await payments.client.post("/subscriptions/plans", json=plan, headers=headers)).status_code == expected
        patch = await payments.client.patch(
            "/subscriptions/plans/neet-monthly", json={"amount_paise": 1}, headers=headers
        )
        assert patch.status_code == expected
        retire = await payments.client.post("/subscriptions/plans/neet-monthly/retire", headers=headers)
        assert retire.status_code == expected
    assert (await payments.client.get("/subscriptions/plans/all", headers=payments.student)).status_code == 403

    created = await payments.client.post("/subscriptions/plans", json=plan, headers=payments.admin)
    assert created.status_code == 201 and created.json()["active"] is True
    taken = await payments.client.post("/subscriptions/plans", json=plan, headers=payments.admin)
    assert taken.status_code == 409 and taken.headers["content-type"] == PROBLEM
    repriced = await payments.client.patch(
        "/subscriptions/plans/neet-crash-monthly", json={"amount_paise": 59_900}, headers=payments.admin
    )
    assert repriced.status_code == 200 and repriced.json()["amount_paise"] == 59_900
    status, subscription = await _subscribe(payments, {"plan": "neet-crash-monthly"})
    assert (status, subscription["amount_paise"]) == (201, 59_900)

    retired = await payments.client.post("/subscriptions/plans/neet-crash-monthly/retire", headers=payments.admin)
    assert retired.status_code == 200 and retired.json()["active"] is False
    status, refused = await _subscribe(payments, {"plan": "neet-crash-monthly"})
    assert status == 409 and str(refused["type"]).endswith("plan-retired")
    public = [p["code"] for p in (await payments.client.get("/subscriptions/plans")).json()]
    assert "neet-crash-monthly" not in public and "neet-monthly" in public
    everything = (await payments.client.get("/subscriptions/plans/all", headers=payments.admin)).json()
    assert {p["code"]: p["active"] for p in everything}["neet-crash-monthly"] is False
    assert [e.action for e in await payments.audit() if e.action.endswith("_plan")] == [
        "create_plan",
        "update_plan",
        "retire_plan",
    ]
