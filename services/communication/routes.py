from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.communication import preferences, service, templates, webhooks
from services.communication.deps import SignedBody
from services.communication.schemas import (
    EmailSend,
    InboundResult,
    LogFilters,
    LogPage,
    MessagePage,
    NotificationSend,
    PageParams,
    PreferencesOut,
    PreferencesUpdate,
    SendAccepted,
    TemplateCreate,
    TemplateFilters,
    TemplateOut,
    WebhookResult,
    WhatsAppSend,
)
from services.kit.deps import AdminUser, CurrentUser, SessionDep

router = APIRouter()


@router.post("/notifications/send", status_code=status.HTTP_202_ACCEPTED, tags=["notifications"])
async def send_notification(body: NotificationSend, _admin: AdminUser, db: SessionDep) -> SendAccepted:
    """Queues a template for a user on every channel their preferences allow (admins and services)."""
    return await service.send_notification(db=db, request=body)


@router.post("/email/send", status_code=status.HTTP_202_ACCEPTED, tags=["notifications"])
async def send_email(body: EmailSend, _admin: AdminUser, db: SessionDep) -> SendAccepted:
    """Queues an email to a user or an address (admins and services)."""
    return await service.send_direct(db=db, channel="email", request=body)


@router.post("/whatsapp/send-message", status_code=status.HTTP_202_ACCEPTED, tags=["notifications"])
async def send_whatsapp(body: WhatsAppSend, _admin: AdminUser, db: SessionDep) -> SendAccepted:
    """Queues a WhatsApp message to a user or a phone number (admins and services)."""
    return await service.send_direct(db=db, channel="whatsapp", request=body)


@router.get("/notifications/preferences", tags=["preferences"])
async def get_preferences(identity: CurrentUser, db: SessionDep) -> PreferencesOut:
    """Gets the caller's notification preferences."""
    return await preferences.get_preferences(db=db, user_id=identity.user_id)


@router.put("/notifications/preferences", tags=["preferences"])
async def update_preferences(body: PreferencesUpdate, identity: CurrentUser, db: SessionDep) -> PreferencesOut:
    """Switches the caller's channels on or off and sets their quiet hours."""
    return await preferences.update_preferences(db=db, user_id=identity.user_id, changes=body)


@router.get("/notifications/{user_id}", tags=["notifications"])
async def list_notifications(
    user_id: uuid.UUID, page: Annotated[PageParams, Query()], identity: CurrentUser, db: SessionDep
) -> MessagePage:
    """Lists a user's messages with their delivery status, newest first (their own; admins any)."""
    return await service.list_notifications(db=db, identity=identity, user_id=user_id, page=page)


@router.get("/communication/logs", tags=["operations"])
async def list_logs(filters: Annotated[LogFilters, Query()], _admin: AdminUser, db: SessionDep) -> LogPage:
    """Lists every message by status, channel and user, newest first (admins)."""
    return await service.list_logs(db=db, filters=filters)


@router.post("/communication/templates", status_code=status.HTTP_201_CREATED, tags=["templates"])
async def create_template(body: TemplateCreate, admin: AdminUser, db: SessionDep) -> TemplateOut:
    """Adds a template, or its next version on a channel (admins)."""
    return await templates.create_template(db=db, request=body, created_by=admin.user_id)


@router.get("/communication/templates", tags=["templates"])
async def list_templates(
    filters: Annotated[TemplateFilters, Query()], _admin: AdminUser, db: SessionDep
) -> list[TemplateOut]:
    """Lists the active templates, or every version with ``all_versions=true`` (admins)."""
    return await templates.list_templates(db=db, filters=filters)


@router.post("/communication/webhooks/{provider}", tags=["webhooks"])
async def delivery_reports(provider: str, body: SignedBody, db: SessionDep) -> WebhookResult:
    """Takes a provider's signed delivery reports: delivered, failed or bounced."""
    return await webhooks.record_delivery_reports(db=db, provider=provider, body=body)


@router.post("/communication/webhooks/{provider}/inbound", tags=["webhooks"])
async def inbound_reply(provider: str, body: SignedBody, db: SessionDep) -> InboundResult:
    """Takes a student's signed reply: STOP opts them out of that channel, START back in."""
    return await webhooks.record_reply(db=db, provider=provider, body=body)
