"""Support cases (customer service): the case, its conversation and its chat transcripts.

A case belongs to a client and is seen where the client is (the client's branch, or the
relationship manager's own clients). Its conversation is one row per message, in or out, on
whatever channel it came; an e-mail reply carries the Message-ID that threads the client's
answer back into the case.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped, through_parent

CASE_CHANNELS = ("email", "phone", "chat", "portal", "branch")
PRIORITIES = ("low", "normal", "high", "urgent")
CASE_STATUSES = ("new", "open", "waiting", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "waiting")
"""Statuses the SLA clock runs in (not resolved, not closed)."""
MESSAGE_CHANNELS = ("email", "phone", "chat", "portal", "branch", "note")
DIRECTIONS = ("inbound", "outbound")


@scoped
class SupportCase(Model):
    """One request of a client, from the first contact until it is closed."""

    __tablename__ = "support_case"
    __table_args__ = (
        CheckConstraint(_one_of("channel", CASE_CHANNELS), name="ck_support_case_channel"),
        CheckConstraint(_one_of("priority", PRIORITIES), name="ck_support_case_priority"),
        CheckConstraint(_one_of("status", CASE_STATUSES), name="ck_support_case_status"),
        # The breach sweep and the queue (open cases by due time).
        Index("ix_support_case_status_due", "status", "sla_due_at"),
        Index("ix_support_case_assignee", "assignee_id", "status"),
        Index("ix_support_case_client", "client_id", "status"),
        Index("ix_support_case_opened", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    channel: Mapped[str] = mapped_column(String(10), default="email")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(10), default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sla_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When the SLA clock started: when the case was opened, or last reopened."""
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the case must be resolved: the clock's start plus the priority's hours."""
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breach_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the assignee and manager were told this due time was missed (reset with the due)."""
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(Client)
    assignee: Mapped[User | None] = relationship(User, foreign_keys=[assignee_id])
    opened_by: Mapped[User | None] = relationship(User, foreign_keys=[opened_by_id])
    messages: Mapped[list[SupportMessage]] = relationship(
        back_populates="case", order_by="SupportMessage.occurred_at, SupportMessage.id"
    )

    __scope__ = _through_client(lambda: SupportCase.client_id)

    @property
    def reference(self) -> str:
        """What the client quotes in a subject line to reach this case."""
        return f"[Case #{self.id}]"

    def __repr__(self) -> str:
        return f"Case #{self.id}: {self.subject}"


def _through_case(column):
    """Scope rules for rows of a case: visible where the case's client is."""
    return through_parent(SupportCase, column)


@scoped
class SupportTranscript(Model):
    """A chat transcript attached to a case; its lines are messages of the case."""

    __tablename__ = "support_transcript"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_case.id"), index=True)
    source_name: Mapped[str | None] = mapped_column(String(200))
    message_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __scope__ = _through_case(lambda: SupportTranscript.case_id)

    def __repr__(self) -> str:
        return f"Transcript of case #{self.case_id} ({self.message_count} messages)"


@scoped
class SupportMessage(Model):
    """One message of a case's conversation: a staff reply (sent through the outbox), an
    e-mail from the client, a line of a chat transcript, a phone note."""

    __tablename__ = "support_message"
    __table_args__ = (
        CheckConstraint(_one_of("direction", DIRECTIONS), name="ck_support_message_direction"),
        CheckConstraint(_one_of("channel", MESSAGE_CHANNELS), name="ck_support_message_channel"),
        Index("ix_support_message_case", "case_id", "occurred_at"),
        # An e-mail is filed once; a reply's id finds its case (In-Reply-To, References).
        UniqueConstraint("message_id", name="uq_support_message_message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_case.id"))
    direction: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    sender: Mapped[str | None] = mapped_column(String(254))
    recipient: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(250))
    """The RFC 822 Message-ID: ours on a reply, the client's on an e-mail received."""
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"))
    transcript_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_transcript.id"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[SupportCase] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship(User)

    __scope__ = _through_case(lambda: SupportMessage.case_id)

    def __repr__(self) -> str:
        return f"{self.direction} {self.channel} on case #{self.case_id}"
