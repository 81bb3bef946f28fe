"""The market-data events a provider pushed, kept once per event id: a replay finds its row
and changes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of

KINDS = ("price", "fx_rate")
OUTCOMES = ("applied", "ignored")


class MarketEvent(Model):
    """One price or rate delivery that was accepted: applied, or ignored as older than the
    price or rate already held."""

    __tablename__ = "market_event"
    __table_args__ = (
        CheckConstraint(_one_of("kind", KINDS), name="ck_market_event_kind"),
        CheckConstraint(_one_of("outcome", OUTCOMES), name="ck_market_event_outcome"),
        Index("ix_market_event_subject_as_of", "kind", "subject", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(20))
    """The instrument's symbol, or the currency pair as ``USD/INR``."""
    value: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    """The price (6 places) or rate (8 places) the event carried."""
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"market event {self.event_id} ({self.kind} {self.subject})"
