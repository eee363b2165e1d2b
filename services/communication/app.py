from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.communication.adapters import SmtpEmailProvider, TwilioSmsProvider, WhatsAppCloudProvider
from services.communication.dispatcher import Dispatcher
from services.communication.handlers import HANDLERS, read_ahead
from services.communication.models import INBOX, OUTBOX
from services.communication.providers import InAppProvider, Provider, SandboxProvider
from services.communication.routes import router
from services.communication.service import CommunicationContext
from services.communication.settings import CommunicationSettings, webhook_secrets
from services.communication.templates import seed_default_templates
from services.kit.app import ServiceKit, build_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def build_providers(settings: CommunicationSettings) -> dict[str, Provider]:
    """Each channel's provider: the real adapter where its keys are set, otherwise the offline sandbox."""
    timeout = settings.provider_timeout_seconds
    email: Provider = SandboxProvider(failure_rate=settings.sandbox_failure_rate)
    whatsapp: Provider = SandboxProvider(failure_rate=settings.sandbox_failure_rate)
    sms: Provider = SandboxProvider(failure_rate=settings.sandbox_failure_rate)
    if settings.smtp_url is not None:
        email = SmtpEmailProvider(
            url=settings.smtp_url.get_secret_value(), sender=settings.email_sender, timeout=timeout
        )
    if settings.whatsapp_token is not None and settings.whatsapp_phone_number_id:
        whatsapp = WhatsAppCloudProvider(
            token=settings.whatsapp_token,
            phone_number_id=settings.whatsapp_phone_number_id,
            api_base=settings.whatsapp_api_base,
            timeout=timeout,
        )
    if settings.twilio_account_sid and settings.twilio_auth_token is not None and settings.twilio_from_number:
        sms = TwilioSmsProvider(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            api_base=settings.twilio_api_base,
            timeout=timeout,
        )
    return {"email": email, "whatsapp": whatsapp, "sms": sms, "in_app": InAppProvider()}


def create_app(settings: CommunicationSettings | None = None) -> FastAPI:
    """Builds the communication service: templates, preferences, and queued, retried delivery."""
    settings = settings or CommunicationSettings()
    kit = ServiceKit.build(settings)
    providers = build_providers(settings)
    dispatcher = Dispatcher(db=kit.db, providers=providers, limiter=kit.limiter, settings=settings)

    async def seed_templates(kit: ServiceKit) -> None:
        async with kit.db.session_scope() as db:
            await seed_default_templates(db=db)

    async def start_dispatcher(_kit: ServiceKit) -> None:
        if settings.dispatcher_enabled:
            await dispatcher.start()

    async def stop_dispatcher(_kit: ServiceKit) -> None:
        await dispatcher.stop()
        for provider in providers.values():
            await provider.close()

    app = build_service_app(
        kit,
        title="Cerebrum communication",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_startup=[seed_templates, start_dispatcher],
        on_shutdown=[stop_dispatcher],
        description="Notifications by email, WhatsApp, SMS and in-app: templates, preferences, delivery tracking.",
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        read_ahead=read_ahead,
    )
    app.state.communication = CommunicationContext(
        settings=settings, providers=providers, webhook_secrets=webhook_secrets(settings)
    )
    app.state.dispatcher = dispatcher
    return app
