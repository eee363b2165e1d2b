"""The real channel adapters: email over SMTP, WhatsApp Business (Meta Cloud API) and SMS (Twilio).

None is called in tests; each is replaced by the sandbox when its keys are not configured.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import aiosmtplib
from pydantic import SecretStr

from services.communication.providers import Envelope, ProviderError, Receipt
from services.communication.telemetry import scrub


class SmtpEmailProvider:
    """Plain-text email over SMTP: ``smtp://`` (STARTTLS when the server offers it) or ``smtps://``."""

    name = "smtp"

    def __init__(self, *, url: str, sender: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
        self.implicit_tls = parts.scheme == "smtps"
        self.hostname = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "cerebrum.academy"
        self.timeout = timeout

    def _email(self, envelope: Envelope) -> tuple[EmailMessage, str]:
        # The Message-ID is derived from our id, so a resend after a crash can be recognised downstream.
        message_id = f"{envelope.message_id}@{self.domain}"
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = envelope.to or ""
        email["Subject"] = envelope.subject or ""
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<{message_id}>"
        email.set_content(envelope.body)
        return email, message_id

    async def send(self, envelope: Envelope) -> Receipt:
        if not envelope.to:
            raise ProviderError("no email address", retryable=False)
        email, message_id = self._email(envelope)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ProviderError(scrub(f"recipient refused: {exc}")[:300], retryable=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is the server's final word; 4xx (greylisting, mailbox busy) is worth another try.
            raise ProviderError(scrub(f"SMTP {exc.code}: {exc.message}")[:300], retryable=exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ProviderError(f"SMTP unavailable: {type(exc).__name__}") from exc
        return Receipt(provider_message_id=message_id)

    async def close(self) -> None:
        return None


class _HttpProvider:
    """An aiohttp session per provider, opened on first use."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _post(self, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            async with self.session().post(url, **kwargs) as response:
                body = await response.json(content_type=None)
                return response.status, body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"{type(exc).__name__} calling the provider") from exc

    @staticmethod
    def _refused(provider: str, status: int, message: str) -> ProviderError:
        # Rate limited or down: try again later. Any other 4xx (a bad number, a bad key) will not improve.
        return ProviderError(scrub(f"{provider} {status}: {message}")[:300], retryable=status == 429 or status >= 500)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class WhatsAppCloudProvider(_HttpProvider):
    """WhatsApp Business through Meta's Cloud API (``POST /{phone-number-id}/messages``)."""

    name = "whatsapp"

    def __init__(self, *, token: SecretStr, phone_number_id: str, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.token = token
        self.url = f"{api_base.rstrip('/')}/{phone_number_id}/messages"

    async def send(self, envelope: Envelope) -> Receipt:
        if not envelope.to:
            raise ProviderError("no phone number", retryable=False)
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": envelope.to.lstrip("+"),
            "type": "text",
            "text": {"preview_url": False, "body": envelope.body},
        }
        headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"}
        status, body = await self._post(self.url, json=payload, headers=headers)
        if status >= 400:
            error = body.get("error") or {}
            raise self._refused("WhatsApp", status, str(error.get("message", "refused")))
        try:
            return Receipt(provider_message_id=str(body["messages"][0]["id"]))
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError("WhatsApp answered without a message id") from exc


class TwilioSmsProvider(_HttpProvider):
    """SMS through Twilio's Messages API."""

    name = "twilio"

    def __init__(
        self, *, account_sid: str, auth_token: SecretStr, from_number: str, api_base: str, timeout: float
    ) -> None:
        super().__init__(timeout=timeout)
        credentials = base64.b64encode(f"{account_sid}:{auth_token.get_secret_value()}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self.from_number = from_number
        self.url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"

    async def send(self, envelope: Envelope) -> Receipt:
        if not envelope.to:
            raise ProviderError("no phone number", retryable=False)
        form = {"To": envelope.to, "From": self.from_number, "Body": envelope.body}
        status, body = await self._post(self.url, data=form, headers={"Authorization": self._authorization})
        if status >= 400:
            raise self._refused("Twilio", status, str(body.get("message", "refused")))
        if not body.get("sid"):
            raise ProviderError("Twilio answered without a message sid")
        return Receipt(provider_message_id=str(body["sid"]))
