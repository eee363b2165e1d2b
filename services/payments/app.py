from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.contracts.events import (
    PaymentFailed,
    PaymentOrderCancelled,
    PaymentRefunded,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCancelled,
)
from services.kit.app import ServiceKit, build_service_app
from services.payments.expiry import OrderExpiry
from services.payments.gateways import RazorpayGateway, StripeGateway
from services.payments.keys import TokenVault, payment_methods_key, provider_keys
from services.payments.models import OUTBOX
from services.payments.providers import PaymentProvider, SandboxProvider
from services.payments.routes import router
from services.payments.service import PaymentsContext
from services.payments.settings import PaymentsSettings

PUBLISHES = (
    PaymentFailed,
    PaymentOrderCancelled,
    PaymentRefunded,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCancelled,
)
"""The contracts this service records in its outbox (their counters exist at zero from start-up)."""

MIGRATIONS = Path(__file__).parent / "migrations"


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


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    """Builds the payments service: orders, verification, webhooks, invoices, subscriptions, saved methods."""
    settings = settings or PaymentsSettings()
    kit = ServiceKit.build(settings)
    ctx = build_payments_context(settings)
    expiry = OrderExpiry(
        kit.db, settings.order_expiry_interval_seconds, stop_timeout=settings.job_stop_timeout_seconds
    )

    async def start_expiry(_kit: ServiceKit) -> None:
        await expiry.start()

    async def stop_expiry(_kit: ServiceKit) -> None:
        await expiry.stop()

    async def close_provider(_kit: ServiceKit) -> None:
        await ctx.provider.close()

    app = build_service_app(
        kit,
        title="Cerebrum payments",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_startup=[start_expiry],
        on_shutdown=[stop_expiry, close_provider],
        description="Payment orders, checkout verification, provider webhooks, GST invoices and subscriptions.",
        outbox=OUTBOX,
        publishes=PUBLISHES,
    )
    app.state.payments = ctx
    app.state.order_expiry = expiry
    return app
