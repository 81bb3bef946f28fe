"""How a notification leaves the building: e-mail over SMTP, SMS through a gateway, in-app.

Each channel's ``send`` raises ``ChannelError`` on failure (the dispatcher retries with backoff).
E-mails carry a Message-ID made from the notification's idempotency key, so a mail system that
sees the same message twice can recognise it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import requests
from flask import current_app, render_template

log = logging.getLogger("fincrm.sms")


class ChannelError(Exception):
    """The message could not be handed over; the row will be retried."""


class Channel(Protocol):
    def send(self, notification) -> None: ...


def recipient_zone(notification) -> Any:
    """The zone a message's times are written in: a member of staff's branch's, a client's
    branch's (UTC when neither is known)."""
    from app.core.localtime import UTC_ZONE, zone_of_client, zone_of_user

    if notification.recipient_user_id is not None:
        return zone_of_user(notification.recipient_user_id)
    if notification.recipient_client_id is not None:
        return zone_of_client(notification.recipient_client_id)
    return UTC_ZONE


def message_id_for(idempotency_key: str) -> str:
    """The Message-ID an e-mail of this outbox row goes out with (a reply to it quotes it in
    In-Reply-To, which is how a support case recognises the client's answer)."""
    return f"<{idempotency_key.replace(':', '.')}@fincrm>"


class EmailChannel:
    def build(self, notification) -> EmailMessage:
        config = current_app.config
        message = EmailMessage()
        message["From"] = config.get("MAIL_DEFAULT_SENDER", "fincrm@localhost")
        message["To"] = notification.address
        message["Subject"] = notification.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id_for(notification.idempotency_key)
        if getattr(notification, "unsubscribe_url", None):
            # RFC 2369 and RFC 8058: mail clients offer "Unsubscribe" and POST it in one click.
            message["List-Unsubscribe"] = f"<{notification.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        context = {
            "notification": notification,
            "base_url": config.get("CRM_BASE_URL", ""),
            "zone": recipient_zone(notification),
        }
        message.set_content(render_template("email/notification.txt", **context))
        message.add_alternative(
            render_template("email/notification.html", **context), subtype="html"
        )
        if notification.attachment_key:
            _attach(message, notification)
        return message

    def send(self, notification) -> None:
        config = current_app.config
        message = self.build(notification)
        try:
            with smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=15) as smtp:
                if config.get("MAIL_USE_TLS"):
                    smtp.starttls(context=ssl.create_default_context())
                if config.get("MAIL_USERNAME"):
                    smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(
                f"SMTP {config['MAIL_SERVER']}:{config['MAIL_PORT']}: {exc}"
            ) from exc


def _attach(message: EmailMessage, notification) -> None:
    """Add the stored file (a scheduled report) to the e-mail; a file that cannot be read is a
    failed send, retried like any other."""
    from app.core.storage import StorageError, get_storage

    try:
        data = get_storage().get(notification.attachment_key)
    except (FileNotFoundError, StorageError) as exc:
        raise ChannelError(f"attachment {notification.attachment_name!r}: {exc}") from exc
    content_type = notification.attachment_type or "application/octet-stream"
    mime, _, parameters = content_type.partition(";")
    maintype, _, subtype = mime.strip().partition("/")
    params = dict(
        part.strip().split("=", 1) for part in parameters.split(";") if "=" in part
    )  # e.g. a CSV's charset=utf-8
    message.add_attachment(
        data,
        maintype=maintype or "application",
        subtype=subtype or "octet-stream",
        filename=notification.attachment_name or "attachment",
        params=params,
    )


class SmsGateway(Protocol):
    def send_sms(self, to: str, text: str) -> str: ...


class LoggingSmsGateway:
    """The default: writes the SMS to the log (and the message log) instead of sending it."""

    def send_sms(self, to: str, text: str) -> str:
        log.info("SMS to %s: %s", to, text)
        return "logged"


class HttpSmsGateway:
    """Posts ``{"to": ..., "text": ...}`` as JSON to ``SMS_GATEWAY_URL`` with a bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def send_sms(self, to: str, text: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.post(
                self.url, json={"to": to, "text": text}, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ChannelError(f"SMS gateway unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise ChannelError(
                f"SMS gateway answered {response.status_code}: {response.text[:200]}"
            )
        try:
            return str(response.json().get("id", "accepted"))
        except ValueError:
            return "accepted"


def sms_gateway() -> SmsGateway:
    config = current_app.config
    if config.get("SMS_GATEWAY", "logging") == "http":
        return HttpSmsGateway(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_TOKEN"))
    return LoggingSmsGateway()


class SmsChannel:
    def send(self, notification) -> None:
        text = f"{notification.subject}: {notification.body}"[:480]
        sms_gateway().send_sms(notification.address, text)


class InAppChannel:
    """In-app rows are shown by the notification centre; nothing to hand over."""

    def send(self, notification) -> None:
        return None


def channel_for(name: str) -> Channel:
    return {"email": EmailChannel(), "sms": SmsChannel(), "in_app": InAppChannel()}[name]
