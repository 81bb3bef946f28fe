"""Brokerage desk records: instruments, their price history, trades and positions.

A position is the running weighted-average-cost state of one client's holding of one
instrument. Only the settlement service writes it (under a row lock), from settled trades; it
can always be recomputed from them (``services.rebuild_positions``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import RISK_PROFILES, Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped

Money = Numeric(18, 2)
Quantity = Numeric(18, 6)
UnitPrice = Numeric(18, 6)

INSTRUMENT_KINDS = ("stock", "etf", "mutual_fund", "bond")
RISK_LEVELS = RISK_PROFILES
"""Instrument risk levels, in the same order as the clients' risk profiles."""
SIDES = ("buy", "sell")
TRADE_STATUSES = ("pending", "settled", "cancelled")


class Instrument(Model):
    __tablename__ = "instrument"
    __table_args__ = (
        CheckConstraint(_one_of("kind", INSTRUMENT_KINDS), name="ck_instrument_kind"),
        CheckConstraint(_one_of("risk_level", RISK_LEVELS), name="ck_instrument_risk_level"),
        CheckConstraint("last_price IS NULL OR last_price > 0", name="ck_instrument_last_price"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="stock")
    exchange: Mapped[str | None] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    risk_level: Mapped[str] = mapped_column(String(20), default="moderate")
    last_price: Mapped[Decimal | None] = mapped_column(UnitPrice)
    last_price_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.symbol} ({self.name})"


class InstrumentPrice(Model):
    """One price an instrument had, as a feed reported it."""

    __tablename__ = "instrument_price"
    __table_args__ = (
        CheckConstraint("price > 0", name="ck_instrument_price_price"),
        Index("ix_instrument_price_instrument_as_of", "instrument_id", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"))
    price: Mapped[Decimal] = mapped_column(UnitPrice)
    as_of: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    instrument: Mapped[Instrument] = relationship(Instrument)


@scoped
class Trade(Model):
    __tablename__ = "trade"
    __table_args__ = (
        CheckConstraint(_one_of("side", SIDES), name="ck_trade_side"),
        CheckConstraint(_one_of("status", TRADE_STATUSES), name="ck_trade_status"),
        CheckConstraint("quantity > 0", name="ck_trade_quantity"),
        CheckConstraint("price > 0", name="ck_trade_price"),
        CheckConstraint("fees >= 0", name="ck_trade_fees"),
        CheckConstraint("gross_amount > 0", name="ck_trade_gross_amount"),
        Index("ix_trade_client_instrument_status", "client_id", "instrument_id", "status"),
        Index("ix_trade_trade_date", "trade_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), index=True)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal] = mapped_column(UnitPrice)
    fees: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    gross_amount: Mapped[Decimal] = mapped_column(Money)
    """quantity x price, rounded half-up to the cent."""
    trade_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    suitability_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    suitability_reason: Mapped[str | None] = mapped_column(Text)
    cost_of_sold: Mapped[Decimal | None] = mapped_column(Money)
    """Sells: the average cost of the units sold (set at settlement)."""
    realised_pnl: Mapped[Decimal | None] = mapped_column(Money)
    """Sells: gross - fees - cost of sold (set at settlement)."""
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    instrument: Mapped[Instrument] = relationship(Instrument)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_client(lambda: Trade.client_id)

    @property
    def reference(self) -> str:
        return f"TR-{self.id:06d}" if self.id else "TR-new"

    def __repr__(self) -> str:
        return f"{self.reference} {self.side} {self.quantity} {self.instrument_id}"


@scoped
class Position(Model):
    """What a client holds of an instrument (settled trades only), at weighted average cost."""

    __tablename__ = "position"
    __table_args__ = (
        UniqueConstraint("client_id", "instrument_id", name="uq_position_client_instrument"),
        CheckConstraint("quantity >= 0", name="ck_position_quantity"),
        CheckConstraint("cost >= 0", name="ck_position_cost"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    """Total cost basis (fees included) of the units held."""
    realised_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    """Cumulative realised profit or loss of this holding's sells."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(Client)
    instrument: Mapped[Instrument] = relationship(Instrument)

    __scope__ = _through_client(lambda: Position.client_id)
