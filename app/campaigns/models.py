"""Marketing campaigns (issue 21): a saved segment picks clients or leads by criteria; a
campaign sends one message to each of them once, through the outbox; each recipient's row
(sent or skipped, and why) is the record of that once, enforced by the database."""

from __future__ import annotations

import json
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
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import Lead, _one_of
from app.org.models import Branch
from app.security.scoping import scoped

AUDIENCES = ("clients", "leads")
CAMPAIGN_CHANNELS = ("email", "sms")
"""The outbox's channels a person outside the staff can be reached on."""
CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
RECIPIENT_STATUSES = ("sent", "skipped")
SKIP_REASONS = ("no_consent", "opted_out", "preferences", "no_address")


def _branch_rule(column):
    """A segment or campaign of a branch is seen in that branch; one without a branch
    (company-wide, made by an Admin) by everyone who may read campaigns."""
    return lambda actor: or_(column() == actor.branch_id, column().is_(None))


@scoped
class CampaignSegment(Model):
    """A saved audience: clients or leads matching ``criteria`` (JSON, checked on save)."""

    __tablename__ = "campaign_segment"
    __table_args__ = (
        CheckConstraint(_one_of("audience", AUDIENCES), name="ck_campaign_segment_audience"),
        Index("ix_campaign_segment_branch", "branch_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    audience: Mapped[str] = mapped_column(String(10), default="clients")
    criteria: Mapped[str] = mapped_column(Text, default="{}")
    """JSON object: field -> value(s), e.g. ``{"segment": ["hni"], "marketing_consent": true}``."""
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    """The branch the segment belongs to (and stays within); empty: company-wide."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch | None] = relationship(Branch)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = {
        "branch": _branch_rule(lambda: CampaignSegment.branch_id),
        "own": _branch_rule(lambda: CampaignSegment.branch_id),
    }

    def criteria_dict(self) -> dict:
        return json.loads(self.criteria or "{}")

    def __repr__(self) -> str:
        return self.name


@scoped
class Campaign(Model):
    """One message to a segment, on one channel, at a time: draft, scheduled, sending, sent
    (or cancelled). ``code`` is the reference (UTM code) leads it brings in carry."""

    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint(_one_of("channel", CAMPAIGN_CHANNELS), name="ck_campaign_channel"),
        CheckConstraint(_one_of("status", CAMPAIGN_STATUSES), name="ck_campaign_status"),
        CheckConstraint("sent_count >= 0 AND skipped_count >= 0", name="ck_campaign_counts"),
        Index("ix_campaign_due", "status", "scheduled_at"),
        Index("ix_campaign_branch", "branch_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("campaign_segment.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    segment: Mapped[CampaignSegment] = relationship(CampaignSegment)
    branch: Mapped[Branch | None] = relationship(Branch)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = {
        "branch": _branch_rule(lambda: Campaign.branch_id),
        "own": _branch_rule(lambda: Campaign.branch_id),
    }

    def __repr__(self) -> str:
        return self.name


def _recipient_rule(kind: str):
    client_rule = _through_client(lambda: CampaignRecipient.client_id)[kind]
    lead_rule = Lead.__scope__[kind]

    def rule(actor):
        from sqlalchemy import exists, select

        lead_visible = exists(
            select(Lead.id)
            .where(Lead.id == CampaignRecipient.lead_id, lead_rule(actor))
            .correlate_except(Lead)
        )
        return or_(client_rule(actor), lead_visible)

    return rule


@scoped
class CampaignRecipient(Model):
    """One client or lead a campaign reached (``sent``) or passed over (``skipped``, with the
    reason): at most one row per campaign and person, whatever runs, however often."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (
        CheckConstraint(_one_of("status", RECIPIENT_STATUSES), name="ck_campaign_recipient_status"),
        CheckConstraint(
            "(client_id IS NOT NULL AND lead_id IS NULL) OR (client_id IS NULL AND lead_id IS NOT NULL)",
            name="ck_campaign_recipient_one",
        ),
        CheckConstraint(
            "reason IS NULL OR " + _one_of("reason", SKIP_REASONS),
            name="ck_campaign_recipient_reason",
        ),
        UniqueConstraint("campaign_id", "client_id", name="uq_campaign_recipient_client"),
        UniqueConstraint("campaign_id", "lead_id", name="uq_campaign_recipient_lead"),
        Index("ix_campaign_recipient_status", "campaign_id", "status", "id"),
        Index("ix_campaign_recipient_client", "client_id"),
        Index("ix_campaign_recipient_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(Campaign)
    client: Mapped[Client | None] = relationship(Client)
    lead: Mapped[Lead | None] = relationship(Lead)

    __scope__ = {"branch": _recipient_rule("branch"), "own": _recipient_rule("own")}

    def __repr__(self) -> str:
        return f"{self.campaign}: {self.client or self.lead} ({self.status})"
