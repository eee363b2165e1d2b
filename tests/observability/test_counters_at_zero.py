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


def test_a_freshly_built_payments_service_exports_every_outcome_and_its_fallbacks_at_zero(tmp_path: Path) -> None:
    # A process of its own: this one's registry holds whatever earlier tests counted.
    out = tmp_path / "metrics.txt"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from services.payments.app import create_app\n"
        "from services.payments.settings import PaymentsSettings\n"
        "from observability.metrics import render_metrics\n"
        "create_app(PaymentsSettings())\n"
        "Path(sys.argv[1]).write_bytes(render_metrics('text/plain')[0])\n"
    )
    command = [sys.executable, "-c", script, str(out)]
    env = {"PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = set(out.read_text().splitlines())
    for outcome in ("succeeded", "failed", "expired"):
        assert f'cerebrum_payments_total{{outcome="{outcome}"}} 0.0' in lines
    assert 'cerebrum_ratelimit_fallback_total{service="payments"} 0.0' in lines
