"""Outbox notifications, the message log, and who wants what (DOMAIN section 10)."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped

CHANNELS = ("email", "sms", "in_app")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "held")
"""`held`: an e-mail kept for the recipient's digest instead of being sent on its own."""
MESSAGE_STATUSES = ("queued", "sent", "failed", "delivered")
DIGESTS = ("none", "daily", "weekly")


@scoped
class Notification(Model):
    """One notification to one recipient on one channel: written in the same transaction as the
    change that caused it, sent later by the dispatcher. ``idempotency_key`` is unique, so the
    same event never produces two rows, and a row is sent at most once."""

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(_one_of("channel", CHANNELS), name="ck_notification_channel"),
        CheckConstraint(_one_of("status", OUTBOX_STATUSES), name="ck_notification_status"),
        CheckConstraint(
            "recipient_user_id IS NOT NULL OR recipient_client_id IS NOT NULL"
            " OR address IS NOT NULL",
            name="ck_notification_recipient",
        ),
        Index("ix_notification_due", "status", "next_attempt_at"),
        Index("ix_notification_inbox", "recipient_user_id", "channel", "read_at"),
        Index("ix_notification_related", "related_type", "related_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(50))
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    recipient_client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    related_type: Mapped[str | None] = mapped_column(String(64))
    related_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A file the e-mail carries (a scheduled report), kept by the storage backend.
    attachment_key: Mapped[str | None] = mapped_column(String(300))
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    # A marketing message's signed unsubscribe link (shown in it, and in List-Unsubscribe).
    unsubscribe_url: Mapped[str | None] = mapped_column(String(500))

    recipient_user: Mapped[User | None] = relationship(User)

    # Written by the system for someone else (a task assigned to a colleague): not write-checked.
    __scope_check_writes__ = False
    # Staff see their own notifications; the outbox screen (Admin) sees all.
    __scope__ = {
        "branch": lambda actor: Notification.recipient_user_id == actor.user_id,
        "own": lambda actor: Notification.recipient_user_id == actor.user_id,
        "bdm": lambda actor: Notification.recipient_user_id == actor.user_id,
        "broker": lambda actor: Notification.recipient_user_id == actor.user_id,
    }

    def __repr__(self) -> str:
        return f"{self.channel} {self.kind}: {self.subject}"


class MessageLog(Model):
    """Every message that went out or came in, whatever the channel."""

    __tablename__ = "message_log"
    __table_args__ = (
        CheckConstraint(_one_of("status", MESSAGE_STATUSES), name="ck_message_log_status"),
        CheckConstraint("direction IN ('outbound', 'inbound')", name="ck_message_log_direction"),
        Index("ix_message_log_related", "related_type", "related_id", "occurred_at"),
        Index("ix_message_log_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    channel: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    related_type: Mapped[str | None] = mapped_column(String(64))
    related_id: Mapped[str | None] = mapped_column(String(64))
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"), index=True)

    def __repr__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.subject or ''}"


class NotificationPreference(Model):
    """Channels on or off and the digest choice, for one member of staff or one client."""

    __tablename__ = "notification_preference"
    __table_args__ = (
        CheckConstraint(_one_of("digest", DIGESTS), name="ck_preference_digest"),
        CheckConstraint(
            "(user_id IS NOT NULL AND client_id IS NULL) OR (user_id IS NULL AND client_id IS NOT NULL)",
            name="ck_preference_owner",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), unique=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    in_app_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    digest: Mapped[str] = mapped_column(String(10), default="none")
    """`daily`/`weekly`: e-mails are held and sent grouped by kind in one digest."""

    user: Mapped[User | None] = relationship(User)
    client: Mapped[Client | None] = relationship(Client)

    def allows(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_enabled"))
