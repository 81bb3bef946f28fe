"""Forex desk records. A wallet's ``balance`` and a reserve's ``balance`` are caches of the
ledger: only ``app.forex.wallets`` changes them, in the same transaction as the journal entry
that moves the money, and ``WalletPosting`` links every journal line that moved a wallet."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped

Money = Numeric(18, 2)
FxRateType = Numeric(18, 8)
EXCHANGE_STATUSES = ("quoted", "executed")


class Currency(Model):
    """An ISO currency the desk deals in; adding one opens its cash, wallet and reserve
    accounts and its (empty) reserve."""

    __tablename__ = "currency"
    __table_args__ = (
        CheckConstraint("minor_units >= 0 AND minor_units <= 3", name="ck_currency_minor_units"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    minor_units: Mapped[int] = mapped_column(Integer, default=2)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return self.code


class FxRate(Model):
    """One quote of a pair: 1 ``base`` = ``rate`` ``quote``. The current rate is the latest."""

    __tablename__ = "fx_rate"
    __table_args__ = (
        CheckConstraint("rate > 0", name="ck_fx_rate_positive"),
        CheckConstraint("base <> quote", name="ck_fx_rate_pair"),
        Index("ix_fx_rate_pair_as_of", "base", "quote", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base: Mapped[str] = mapped_column(ForeignKey("currency.code"))
    quote: Mapped[str] = mapped_column(ForeignKey("currency.code"))
    rate: Mapped[Decimal] = mapped_column(FxRateType)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(60), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    def __repr__(self) -> str:
        return f"{self.pair} {self.rate}"


@scoped
class Wallet(Model):
    """A client's money in one currency, held by the desk (a liability in the ledger)."""

    __tablename__ = "wallet"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_wallet_balance"),
        UniqueConstraint("client_id", "currency", name="uq_wallet_client_currency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    currency: Mapped[str] = mapped_column(ForeignKey("currency.code"))
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    """A cache of the ledger, changed only by ``app.forex.wallets.move_wallet``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)

    __scope__ = _through_client(lambda: Wallet.client_id)

    @property
    def label(self) -> str:
        return f"{self.currency} wallet of {self.client.name}"

    def __repr__(self) -> str:
        return f"{self.client.name} {self.currency}"


class WalletPosting(Model):
    """A journal line that moved a wallet (+ in, - out)."""

    __tablename__ = "wallet_posting"

    journal_line_id: Mapped[int] = mapped_column(ForeignKey("journal_line.id"), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallet.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)


class Reserve(Model):
    """The desk's own money in one currency, out of which exchanges pay clients."""

    __tablename__ = "fx_reserve"
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_fx_reserve_balance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(ForeignKey("currency.code"), unique=True)
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    """A cache of the reserve account's credit balance, changed only by ``app.forex.wallets``."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"{self.currency} reserve"


@scoped
class FxExchange(Model):
    """A client selling ``sell_amount`` of one currency for ``buy_amount`` of another: quoted
    first (valid until ``quote_expires_at``), then executed once."""

    __tablename__ = "fx_exchange"
    __table_args__ = (
        CheckConstraint(_one_of("status", EXCHANGE_STATUSES), name="ck_fx_exchange_status"),
        CheckConstraint("sell_currency <> buy_currency", name="ck_fx_exchange_pair"),
        CheckConstraint("sell_amount > 0 AND buy_amount > 0", name="ck_fx_exchange_amounts"),
        CheckConstraint("mid_rate > 0 AND client_rate > 0", name="ck_fx_exchange_rates"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    sell_currency: Mapped[str] = mapped_column(ForeignKey("currency.code"))
    buy_currency: Mapped[str] = mapped_column(ForeignKey("currency.code"))
    sell_amount: Mapped[Decimal] = mapped_column(Money)
    buy_amount: Mapped[Decimal] = mapped_column(Money)
    mid_rate: Mapped[Decimal] = mapped_column(FxRateType)
    spread_bps: Mapped[int] = mapped_column(Integer)
    client_rate: Mapped[Decimal] = mapped_column(FxRateType)
    status: Mapped[str] = mapped_column(String(10), default="quoted")
    quote_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    points_earned: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entry.id"))

    client: Mapped[Client] = relationship(Client)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_client(lambda: FxExchange.client_id)

    @property
    def reference(self) -> str:
        return f"FX-{self.id:06d}"

    @property
    def state(self) -> str:
        """``expired`` for a quote past its time, else the stored status."""
        if self.status == "quoted" and self.quote_expires_at <= utcnow():
            return "expired"
        return self.status

    def __repr__(self) -> str:
        return self.reference
