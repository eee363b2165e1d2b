from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog
from fastapi import FastAPI

from services.kit.app import ServiceKit, build_service_app
from services.kit.db import Database
from services.kit.time import utcnow
from services.payments.gateways import RazorpayGateway, StripeGateway
from services.payments.keys import TokenVault, payment_methods_key, provider_keys
from services.payments.models import OUTBOX
from services.payments.orders import expire_orders
from services.payments.providers import PaymentProvider, SandboxProvider
from services.payments.routes import router
from services.payments.service import PaymentsContext
from services.payments.settings import PaymentsSettings

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("cerebrum.payments")


def build_provider(settings: PaymentsSettings) -> PaymentProvider:
    """The configured provider: the offline sandbox unless Razorpay or Stripe is chosen."""
    keys = provider_keys(settings)
    if settings.payment_provider == "razorpay":
        return RazorpayGateway(
            base_url=settings.razorpay_api_url, keys=keys, timeout_seconds=settings.provider_timeout_seconds
        )
    if settings.payment_provider == "stripe":
        return StripeGateway(
            base_url=settings.stripe_api_url, keys=keys, timeout_seconds=settings.provider_timeout_seconds
        )
    return SandboxProvider(keys, failure_rate=settings.sandbox_failure_rate)


def build_payments_context(settings: PaymentsSettings) -> PaymentsContext:
    provider = build_provider(settings)
    return PaymentsContext(
        settings=settings,
        provider=provider,
        sandbox=provider if isinstance(provider, SandboxProvider) else None,
        vault=TokenVault(payment_methods_key(settings)),
    )


class OrderExpiry:
    """Expires unpaid orders every few seconds, for as long as the app runs."""

    def __init__(self, db: Database, interval_seconds: float) -> None:
        self.db = db
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        async with self.db.session_scope() as session:
            return await expire_orders(db=session, now=utcnow())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception as exc:  # a database outage: keep the loop alive and try again
                log.warning("order_expiry_failed", error=type(exc).__name__)

    async def start(self, _kit: ServiceKit) -> None:
        self._task = asyncio.create_task(self._loop(), name="payments-order-expiry")

    async def stop(self, _kit: ServiceKit) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    """Builds the payments service: orders, verification, webhooks, invoices, subscriptions, saved methods."""
    settings = settings or PaymentsSettings()
    kit = ServiceKit.build(settings)
    ctx = build_payments_context(settings)
    expiry = OrderExpiry(kit.db, settings.order_expiry_interval_seconds)

    async def close_provider(_kit: ServiceKit) -> None:
        await ctx.provider.close()

    app = build_service_app(
        kit,
        title="Cerebrum payments",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_startup=[expiry.start],
        on_shutdown=[expiry.stop, close_provider],
        description="Payment orders, checkout verification, provider webhooks, GST invoices and subscriptions.",
        outbox=OUTBOX,
    )
    app.state.payments = ctx
    app.state.order_expiry = expiry
    return app
