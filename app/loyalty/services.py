"""Loyalty points: earned on exchanges by the rule in settings, spent on vouchers.

Rule: ``CRM_LOYALTY_POINTS_PER_UNIT`` points for every whole ``CRM_LOYALTY_UNIT_AMOUNT`` of
base-currency value sold (the amount sold converted at the mid rate; rounded down). Every
change is a ``LoyaltyTransaction`` written with the new total, the account row locked first,
so two redemptions at once never take the points below zero (a CHECK backs this up)."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.errors import ConflictError, FieldError, NotFound
from app.core.validators import parse_id
from app.extensions import db
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction, Voucher, VoucherRedemption
from app.security.scoping import UNSCOPED, current_actor


def points_for(base_value: Decimal | None) -> int:
    if base_value is None or base_value <= 0:
        return 0
    unit = Decimal(str(current_app.config.get("CRM_LOYALTY_UNIT_AMOUNT", "100.00")))
    per_unit = int(current_app.config.get("CRM_LOYALTY_POINTS_PER_UNIT", 1))
    return int(base_value // unit) * per_unit


def account_for(client_id: int) -> LoyaltyAccount:
    """The client's loyalty account, locked for this transaction; made when missing."""
    query = select(LoyaltyAccount).where(LoyaltyAccount.client_id == client_id)
    if db.session.scalars(query).first() is None:
        try:
            with db.session.begin_nested():
                db.session.add(LoyaltyAccount(client_id=client_id, points=0))
        except IntegrityError:
            pass  # opened by a concurrent request
    return db.session.execute(
        query.with_for_update(of=LoyaltyAccount).execution_options(populate_existing=True)
    ).scalar_one()


def change_points(
    client_id: int,
    points: int,
    reason: str,
    source: object | None = None,
    note: str | None = None,
) -> LoyaltyTransaction:
    """The only change of a client's points: a transaction and the new total."""
    account = account_for(client_id)
    if account.points + points < 0:
        raise FieldError(f"needs {-points} points, the client has {account.points}.", "points")
    account.points += points
    actor = current_actor()
    transaction = LoyaltyTransaction(
        client_id=client_id,
        points=points,
        balance_after=account.points,
        reason=reason,
        source_type=getattr(source, "__tablename__", None),
        source_id=getattr(source, "id", None),
        note=note,
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(transaction)
    db.session.flush()
    return transaction


def award_for_exchange(exchange) -> int:
    """Points for an executed exchange, by the rule; written in the exchange's transaction."""
    from app.forex.services import base_value

    points = points_for(base_value(exchange.sell_amount, exchange.sell_currency))
    if points:
        change_points(
            exchange.client_id, points, "earn", exchange, f"Exchange {exchange.reference}"
        )
    return points


def _id(value: object, field: str) -> int:
    return parse_id(value, field)


def redeem(data: dict) -> VoucherRedemption:
    """Spend a client's points on a voucher (``client_id``, ``voucher_id``); refused with
    nothing written when the points are short, the voucher inactive or out of stock."""
    from app.clients.models import Client

    client = db.session.get(Client, _id(data.get("client_id"), "client_id"))
    if client is None:
        raise NotFound("no such client.")
    voucher = db.session.execute(
        select(Voucher)
        .where(Voucher.id == _id(data.get("voucher_id"), "voucher_id"))
        .with_for_update(of=Voucher)
        .execution_options(populate_existing=True, **UNSCOPED)
    ).scalar_one_or_none()
    if voucher is None:
        raise FieldError("no such voucher.", "voucher_id")
    if not voucher.active:
        raise ConflictError(f"the voucher {voucher.name} is no longer offered.", "voucher_id")
    if voucher.stock is not None and voucher.stock <= 0:
        raise ConflictError(f"the voucher {voucher.name} is out of stock.", "voucher_id")
    transaction = change_points(
        client.id, -voucher.points_cost, "redeem", voucher, f"Voucher {voucher.name}"
    )
    if voucher.stock is not None:
        voucher.stock -= 1
    actor = current_actor()
    redemption = VoucherRedemption(
        client_id=client.id,
        voucher_id=voucher.id,
        points=voucher.points_cost,
        transaction_id=transaction.id,
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(redemption)
    db.session.flush()
    return redemption


def prepare_voucher(voucher: Voucher) -> Voucher:
    from app.core.validators import clean_text, parse_int

    voucher.code = (clean_text(voucher.code, "code", 30, required=True) or "").upper()
    voucher.name = clean_text(voucher.name, "name", 120, required=True)
    voucher.points_cost = parse_int(voucher.points_cost, "points_cost", 1, 10_000_000)
    voucher.stock = parse_int(voucher.stock, "stock", 0, 10_000_000, required=False)
    clash = db.session.scalar(
        select(Voucher.id).where(Voucher.code == voucher.code, Voucher.id != (voucher.id or 0)),
        execution_options=UNSCOPED,
    )
    if clash is not None:
        raise ConflictError(f"voucher code {voucher.code} already exists.", "code")
    if voucher.active is None:
        voucher.active = True
    return voucher


def points_of(client_id: int) -> int:
    account = db.session.scalars(
        select(LoyaltyAccount).where(LoyaltyAccount.client_id == client_id)
    ).first()
    return account.points if account else 0
