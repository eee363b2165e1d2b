"""PaymentFailureSpike fires at exactly its stated threshold, live.

The embedded platform and a Prometheus of its own with the deployed rules (the ``cerebrum slo
quiet`` harness: ``slo.quiet.embedded`` and ``chaos.prometheus.RunPrometheus``, 1 s intervals).
A student's payments fail as they would in the sandbox: an order, a failed checkout, and the
provider's signed ``payment.failed`` webhook through the gateway. One failure short of the rule's
volume guard stays quiet; the failure that reaches it fires (the rule has no ``for:``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rich.console import Console

from chaos.prometheus import ROOT, RunPrometheus, alerts_now
from slo.quiet import QuietPlan, embedded

ALERT = "PaymentFailureSpike"
# On a busy 2-core machine a scrape, an evaluation or a request can lag well behind its 1 s interval.
PATIENCE_SECONDS = 30.0
QUIET_SECONDS = 5.0  # several evaluation intervals after Prometheus has read the last failure


def rule() -> tuple[str, int]:
    """The rule's failed-payment count expression and the settled count it asks for, read from the file."""
    groups = yaml.safe_load((ROOT / "alerts" / "cerebrum_rules.yml").read_text())["groups"]
    (spike,) = [r for g in groups for r in g["rules"] if r.get("alert") == ALERT]
    failed = spike["expr"].partition(" / ")[0]
    guard = spike["expr"].rpartition(" >= ")[2]
    assert 'outcome="failed"' in failed and guard.isdigit(), f"{ALERT} no longer reads as `failed / settled ... >= N`"
    # The threshold the page states to whoever receives it is the one the expression enforces.
    assert f"at least {guard} were settled" in spike["annotations"]["description"]
    return failed, int(guard)


def counted(prometheus: str, expr: str) -> float | None:
    """What Prometheus reads for the expression now; None while it has no sample."""
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def ours(prometheus: str) -> list[dict[str, Any]]:
    return [a for a in alerts_now(prometheus) if a["labels"]["alertname"] == ALERT]


def wait_for(
    what: str, probe: Callable[[], Any], done: Callable[[Any], bool] = bool, timeout: float = PATIENCE_SECONDS
) -> Any:
    """Polls until ``done`` holds for what ``probe`` reads; fails with the last reading at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if done(last):
            return last
        time.sleep(0.25)
    pytest.fail(f"waited {timeout:.0f} s for {what}; last read {last!r}")


def fail_a_payment(gateway: httpx.Client, student_id: str) -> None:
    """An order the student pays with a card the sandbox declines; the provider's webhook settles it failed."""
    order = {"user_id": student_id, "amount_paise": 49900, "description": "NEET mock test series"}
    created = gateway.post("/api/payments/create-order", json=order, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201, created.text
    checkout = gateway.post(
        "/api/payments/sandbox/checkout", json={"order_id": created.json()["order_id"], "outcome": "failure"}
    )
    assert checkout.status_code == 200 and checkout.json()["outcome"] == "failure", checkout.text
    webhook = checkout.json()["webhook"]
    settled = gateway.post(webhook["url"], content=webhook["body"].encode(), headers=webhook["headers"])
    assert settled.json() == {"status": "processed"}, settled.text


def test_payment_failure_spike_fires_at_its_threshold_live(tmp_path: Path) -> None:
    failed_count, threshold = rule()
    plan = QuietPlan(minutes=0, out=tmp_path)
    prometheus = RunPrometheus(tmp_path / "prometheus")
    with embedded(plan, Console(quiet=True)) as (url, accounts), httpx.Client(base_url=url, timeout=60) as gateway:
        try:
            prometheus.start({"cerebrum": url})
            login = gateway.post("/api/auth/login", json=json.loads(accounts.read_text())["student"])
            assert login.status_code == 200, login.text
            gateway.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            student_id = gateway.get("/api/users/profile").json()["id"]
            # The failed series exists at 0 from start-up: Prometheus must have read that 0 before
            # the first failure, or the first failure would be a new series that is never counted.
            count = partial(counted, prometheus.url, failed_count)
            wait_for("the failed-payment count at 0", count, lambda n: n == 0)

            for _ in range(threshold - 1):
                fail_a_payment(gateway, student_id)
            wait_for(f"Prometheus to count {threshold - 1} failures", count, lambda n: n == threshold - 1)
            quiet_until = time.monotonic() + QUIET_SECONDS
            while time.monotonic() < quiet_until:
                assert ours(prometheus.url) == [], f"{ALERT} is active after {threshold - 1} failed payments"
                time.sleep(0.5)
            assert count() == threshold - 1

            fail_a_payment(gateway, student_id)
            (fired,) = wait_for(f"{ALERT} to fire", lambda: [a for a in ours(prometheus.url) if a["state"] == "firing"])
            assert count() == threshold
            assert float(fired["value"]) == 1.0, "every settled payment failed: the ratio reads 100%"
        finally:
            prometheus.stop()
