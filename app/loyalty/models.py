"""Loyalty records. ``LoyaltyAccount.points`` is the running total of the client's
``LoyaltyTransaction`` rows, changed only by ``app.loyalty.services`` and never below zero."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clients.models import Client, _through_client
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of
from app.security.scoping import scoped

REASONS = ("earn", "redeem", "adjust")


@scoped
class LoyaltyAccount(Model):
    __tablename__ = "loyalty_account"
    __table_args__ = (CheckConstraint("points >= 0", name="ck_loyalty_account_points"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), unique=True)
    points: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(Client)

    __scope__ = _through_client(lambda: LoyaltyAccount.client_id)

    def __repr__(self) -> str:
        return f"{self.client.name}: {self.points} points"


@scoped
class LoyaltyTransaction(Model):
    """One change of a client's points (+ earned, - redeemed) and the total after it."""

    __tablename__ = "loyalty_transaction"
    __table_args__ = (
        CheckConstraint(_one_of("reason", REASONS), name="ck_loyalty_transaction_reason"),
        CheckConstraint("points <> 0", name="ck_loyalty_transaction_points"),
        CheckConstraint("balance_after >= 0", name="ck_loyalty_transaction_balance"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(10))
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    created_by: Mapped[User | None] = relationship(User)

    __scope__ = _through_client(lambda: LoyaltyTransaction.client_id)


class Voucher(Model):
    __tablename__ = "voucher"
    __table_args__ = (
        CheckConstraint("points_cost > 0", name="ck_voucher_points_cost"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_voucher_stock"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    points_cost: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    stock: Mapped[int | None] = mapped_column(Integer)
    """How many are left to give; empty for no limit."""

    def __repr__(self) -> str:
        return f"{self.name} ({self.points_cost} points)"


@scoped
class VoucherRedemption(Model):
    __tablename__ = "voucher_redemption"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("voucher.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transaction.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    voucher: Mapped[Voucher] = relationship(Voucher)

    __scope__ = _through_client(lambda: VoucherRedemption.client_id)
