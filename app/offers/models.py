"""Offers (DOMAIN section 8): a rule picks clients (segment, risk profile, recent activity, a
festival or holiday from the calendar in settings) and each chosen client gets the offer once,
as a notification through the outbox. ``OfferDelivery`` is the record of that once: one row per
offer and client, enforced by the database."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.comms.models import Notification
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped

OFFER_CHANNELS = ("email", "sms")
"""The channels a client can be reached on (clients have no in-app inbox)."""
ACTIVITY_RULES = ("any", "active", "inactive")
"""``active``: some activity within ``activity_days`` days; ``inactive``: none within them."""
PLACEHOLDERS = ("first_name", "name")
"""What a subject or body may name in braces, filled per client."""


class Offer(Model):
    """A company-wide offer: who gets it (the rule) and what they are told."""

    __tablename__ = "offer"
    __table_args__ = (
        CheckConstraint(_one_of("channel", OFFER_CHANNELS), name="ck_offer_channel"),
        CheckConstraint(_one_of("activity", ACTIVITY_RULES), name="ck_offer_activity"),
        CheckConstraint(
            "(activity = 'any' AND activity_days IS NULL)"
            " OR (activity <> 'any' AND activity_days >= 1)",
            name="ck_offer_activity_days",
        ),
        CheckConstraint("lead_days >= 0", name="ck_offer_lead_days"),
        CheckConstraint(
            "starts_on IS NULL OR ends_on IS NULL OR ends_on >= starts_on",
            name="ck_offer_window",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    segments: Mapped[str | None] = mapped_column(String(100))
    """Comma-separated client segments (``affluent,hni``); empty: every segment."""
    risk_profiles: Mapped[str | None] = mapped_column(String(100))
    """Comma-separated risk profiles; empty: any (including clients not yet assessed)."""
    activity: Mapped[str] = mapped_column(String(10), default="any")
    activity_days: Mapped[int | None] = mapped_column(Integer)
    occasion: Mapped[str | None] = mapped_column(String(100))
    """A festival or holiday of ``CRM_FESTIVALS``: the offer goes out only in the days before it."""
    lead_days: Mapped[int] = mapped_column(Integer, default=0)
    """Sent from the occasion's date minus this many days up to the occasion itself."""
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship(User)
    deliveries: Mapped[list[OfferDelivery]] = relationship(
        back_populates="offer", order_by="OfferDelivery.id", viewonly=True
    )

    def segment_list(self) -> list[str]:
        return [s for s in (self.segments or "").split(",") if s]

    def risk_profile_list(self) -> list[str]:
        return [r for r in (self.risk_profiles or "").split(",") if r]

    def __repr__(self) -> str:
        return self.name


@scoped
class OfferDelivery(Model):
    """One offer sent to one client: at most one row per offer and client, whatever runs."""

    __tablename__ = "offer_delivery"
    __table_args__ = (
        UniqueConstraint("offer_id", "client_id", name="uq_offer_delivery_offer_client"),
        Index("ix_offer_delivery_client", "client_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    offer: Mapped[Offer] = relationship(back_populates="deliveries")
    client: Mapped[Client] = relationship(Client)
    notification: Mapped[Notification | None] = relationship(Notification)

    __scope__ = _through_client(lambda: OfferDelivery.client_id)

    def __repr__(self) -> str:
        return f"{self.offer} to {self.client}"
