from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from services.kit.schemas import QueryInput, StrictInput

Channel = Literal["email", "whatsapp", "sms", "in_app"]
CHANNELS: tuple[Channel, ...] = ("email", "whatsapp", "sms", "in_app")
Status = Literal["queued", "sent", "delivered", "failed", "bounced", "suppressed"]
TEMPLATE_NAME = r"^[a-z][a-z0-9_]{1,79}$"
PHONE = r"^\+[1-9][0-9]{7,14}$"
TemplateName = Annotated[str, Field(pattern=TEMPLATE_NAME, description="e.g. enrolment_confirmation")]
Phone = Annotated[str, Field(pattern=PHONE, description="E.164, e.g. +919812345678")]
MAX_BODY = {"email": 20_000, "whatsapp": 4096, "sms": 1600, "in_app": 2000}


def _check_variables(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 50:
        raise ValueError("at most 50 variables")
    for name in value:
        if not name.isidentifier():
            raise ValueError(f"variable names are identifiers; {name[:40]!r} is not")
    return value


class NotificationSend(StrictInput):
    """Renders a template for a user on every channel it has, as far as their preferences allow."""

    user_id: uuid.UUID
    template: TemplateName
    variables: dict[str, Any] = Field(
        default_factory=dict, description="the template's variables; `name` defaults to the user's stored name"
    )
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=4)

    _variables = field_validator("variables")(_check_variables)


class DirectSend(StrictInput):
    """One message on one channel, to a user or an address, from a template or a literal body."""

    user_id: uuid.UUID | None = None
    template: TemplateName | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)

    _variables = field_validator("variables")(_check_variables)

    @model_validator(mode="after")
    def _one_of_each(self) -> DirectSend:
        if (self.user_id is None) == (getattr(self, "to", None) is None):
            raise ValueError("send either user_id or to")
        if (self.template is None) == (self.body is None):
            raise ValueError("send either template (with variables) or body")
        return self


class EmailSend(DirectSend):
    to: EmailStr | None = None
    subject: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _subject_with_body(self) -> EmailSend:
        if self.body is not None and self.subject is None:
            raise ValueError("an email with a literal body needs a subject")
        return self


class WhatsAppSend(DirectSend):
    to: Phone | None = None


class QueuedMessage(BaseModel):
    id: uuid.UUID
    channel: Channel
    status: Status


class SendAccepted(BaseModel):
    message_ids: list[uuid.UUID]
    messages: list[QueuedMessage]


class StatusStep(BaseModel):
    status: str
    detail: str | None
    occurred_at: datetime


class MessageOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    channel: Channel
    recipient: str | None = Field(description="masked")
    template: str | None
    template_version: int | None
    subject: str | None
    body: str
    status: Status
    attempts: int
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    history: list[StatusStep]


class MessagePage(BaseModel):
    items: list[MessageOut]
    total: int
    limit: int
    offset: int


class PageParams(QueryInput):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=100_000)


class LogFilters(PageParams):
    status: Status | None = None
    channel: Channel | None = None
    user_id: uuid.UUID | None = None


class LogEntry(BaseModel):
    """A message as operators see it: everything but the body."""

    id: uuid.UUID
    user_id: uuid.UUID | None
    channel: Channel
    recipient: str | None = Field(description="masked")
    template: str | None
    template_version: int | None
    subject: str | None
    status: Status
    attempts: int
    provider: str | None
    provider_message_id: str | None
    error: str | None
    source: str
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None


class LogPage(BaseModel):
    items: list[LogEntry]
    total: int
    limit: int
    offset: int


class QuietHours(StrictInput):
    """No WhatsApp or SMS between start and end (local time); they wait until the end, never dropped."""

    start: time
    end: time
    timezone: str | None = Field(default=None, max_length=64, description="IANA name; the academy's by default")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value[:64]!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


class PreferencesUpdate(StrictInput):
    """Channels to switch on or off; those left out stay as they are. ``quiet_hours: null`` removes them."""

    email: bool | None = None
    whatsapp: bool | None = None
    sms: bool | None = None
    in_app: bool | None = None
    quiet_hours: QuietHours | None = None


class PreferencesOut(BaseModel):
    user_id: uuid.UUID
    email: bool
    whatsapp: bool
    sms: bool
    in_app: bool
    quiet_hours: QuietHours | None


class TemplateCreate(StrictInput):
    """A template's new version (the first when the name is new on that channel)."""

    name: TemplateName
    channel: Channel
    subject: str | None = Field(default=None, min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)

    @model_validator(mode="after")
    def _subject_for_email(self) -> TemplateCreate:
        if self.channel == "email" and self.subject is None:
            raise ValueError("an email template needs a subject")
        if self.channel != "email" and self.subject is not None:
            raise ValueError("only email templates have a subject")
        return self


class TemplateFilters(QueryInput):
    name: TemplateName | None = None
    channel: Channel | None = None
    all_versions: bool = False


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: Channel
    version: int
    subject: str | None
    body: str
    variables: list[str]
    active: bool
    created_at: datetime


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider_message_id: str = Field(min_length=1, max_length=200)
    status: Literal["delivered", "failed", "bounced"]
    error: str | None = Field(default=None, max_length=300)


class StatusWebhook(BaseModel):
    """A provider's delivery reports, in the academy's normalised shape."""

    model_config = ConfigDict(extra="ignore")

    events: list[StatusUpdate] = Field(min_length=1, max_length=1000)


class WebhookResult(BaseModel):
    updated: int
    ignored: int


class InboundReply(BaseModel):
    """A reply a student sent to one of our messages."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    sender: str = Field(alias="from", min_length=3, max_length=254)
    text: str = Field(max_length=4096)


class InboundResult(BaseModel):
    action: Literal["opted_out", "opted_in", "ignored"]
    channel: Channel
