"""Counters an alert reads are exported at zero from start-up, for every label value they know.

A labelled child that first appears at its first event is a new series at 1: ``increase()`` and
``rate()`` never count that event, so PaymentFailureSpike needed 8 failures to see 5.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest

from observability.metrics import at_zero
from services.gateway.routing import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def test_known_children_are_exported_at_zero_before_any_event() -> None:
    registry = CollectorRegistry()
    orders = at_zero(Counter("orders", "Orders.", ("outcome", "kind"), registry=registry), ("failed", "card"))
    single = at_zero(Counter("refunds", "Refunds.", ("outcome",), registry=registry), "failed", "succeeded")
    text = generate_latest(registry).decode()
    assert 'orders_total{kind="card",outcome="failed"} 0.0' in text
    assert 'refunds_total{outcome="failed"} 0.0' in text and 'refunds_total{outcome="succeeded"} 0.0' in text
    orders.labels("failed", "card").inc()
    single.labels("failed").inc()
    text = generate_latest(registry).decode()
    assert 'orders_total{kind="card",outcome="failed"} 1.0' in text and 'refunds_total{outcome="failed"} 1.0' in text


def _metrics_of_fresh_apps(tmp_path: Path, *builds: str) -> set[str]:
    """The metric lines of a process of its own that only builds these apps (this one's registry
    holds whatever earlier tests counted)."""
    out = tmp_path / "metrics.txt"
    script = "\n".join(
        [
            "import sys",
            "from pathlib import Path",
            "from observability.metrics import render_metrics",
            *builds,
            "Path(sys.argv[1]).write_bytes(render_metrics('text/plain')[0])",
        ]
    )
    command = [sys.executable, "-c", script, str(out)]
    env = {"PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(out.read_text().splitlines())


def test_a_freshly_built_payments_service_exports_every_outcome_and_its_fallbacks_at_zero(tmp_path: Path) -> None:
    lines = _metrics_of_fresh_apps(
        tmp_path,
        "from services.payments.app import create_app",
        "from services.payments.settings import PaymentsSettings",
        "create_app(PaymentsSettings())",
    )
    for outcome in ("succeeded", "failed", "expired"):
        assert f'cerebrum_payments_total{{outcome="{outcome}"}} 0.0' in lines
    assert 'cerebrum_ratelimit_fallback_total{service="payments"} 0.0' in lines
    # Its relay's first failure, each event's first publish and the first unchecked session count too.
    assert 'cerebrum_outbox_relay_failures_total{service="payments"} 0.0' in lines
    for event in ("payment.succeeded", "payment.failed", "payment.order_cancelled", "subscription.activated"):
        assert f'cerebrum_events_published_total{{event="{event}",service="payments"}} 0.0' in lines
    assert 'cerebrum_auth_revocation_check_skipped_total{service="payments"} 0.0' in lines


def test_a_freshly_built_gateway_reports_each_prefix_s_weight_and_checks_no_session_itself(tmp_path: Path) -> None:
    lines = _metrics_of_fresh_apps(
        tmp_path,
        "from services.gateway.app import create_app",
        "from services.gateway.settings import GatewaySettings",
        "create_app(GatewaySettings())",
    )
    weights = {line for line in lines if line.startswith("cerebrum_gateway_traffic_weight{")}
    assert weights == {f'cerebrum_gateway_traffic_weight{{prefix="{prefix}"}} 100.0' for prefix in ROUTES}
    assert not [line for line in lines if line.startswith("cerebrum_auth_revocation_check_skipped_total{")]
