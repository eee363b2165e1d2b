"""Order expiry: unpaid orders past their expiry are expired every few seconds, as a periodic job.

A round that finds nothing due starts no trace (a poll); a round that expires orders is traced
under ``orders.expire``, and the ``payment.failed`` events it records carry that trace on to the
enrolments they end.
"""

from __future__ import annotations

from opentelemetry import trace

from services.kit.db import Database
from services.kit.jobs import PeriodicJob
from services.kit.time import utcnow
from services.payments import repository
from services.payments.orders import expire_orders

tracer = trace.get_tracer("cerebrum.payments")


class OrderExpiry:
    """Expires unpaid orders every few seconds, for as long as the app runs."""

    def __init__(self, db: Database, interval_seconds: float, *, stop_timeout: float = 10.0) -> None:
        self.db = db
        self.interval = interval_seconds
        # The first round waits one interval: nothing created by this process can be due at start.
        self.job = PeriodicJob(
            "payments-order-expiry",
            self._round,
            interval=interval_seconds,
            stop_timeout=stop_timeout,
            run_at_start=False,
        )

    async def run_once(self) -> int:
        """Expires the orders due now; returns how many."""
        now = utcnow()
        async with self.db.session_scope() as session:
            if not await repository.orders_due_to_expire(db=session, now=now, limit=1):
                return 0
            with tracer.start_as_current_span("orders.expire") as span:
                expired = await expire_orders(db=session, now=now)
                span.set_attribute("cerebrum.orders.expired", expired)
                return expired

    async def _round(self) -> None:
        await self.run_once()

    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()
