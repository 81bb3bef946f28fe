"""The forex desk and loyalty on a client's timeline: executed exchanges (what was sold for
what, at which rate, the points earned) and every change of the client's points. Each source
is one query; importing this module registers them."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.clients.timeline import TimelineEvent, _bounded, _rows, register_timeline_source
from app.forex.models import FxExchange
from app.loyalty.models import LoyaltyTransaction


@register_timeline_source("exchange", "Exchanges")
def exchange_events(client_id: int, before: datetime | None, limit: int) -> list[TimelineEvent]:
    query = (
        select(
            FxExchange.id,
            FxExchange.sell_amount,
            FxExchange.sell_currency,
            FxExchange.buy_amount,
            FxExchange.buy_currency,
            FxExchange.client_rate,
            FxExchange.points_earned,
            User.username,
            FxExchange.executed_at,
        )
        .outerjoin(User, User.id == FxExchange.created_by_id)
        .where(FxExchange.client_id == client_id, FxExchange.status == "executed")
    )
    return [
        TimelineEvent(
            at=executed_at,
            kind="exchange",
            title=f"FX-{exchange_id:06d}: sold {sell:,.2f} {sell_ccy} for {buy:,.2f} {buy_ccy}",
            detail=f"at {rate}; {points} loyalty point(s) earned",
            url=f"/fxexchangeview/show/{exchange_id}",
            who=username,
        )
        for exchange_id, sell, sell_ccy, buy, buy_ccy, rate, points, username, executed_at in _rows(
            _bounded(query, FxExchange.executed_at, before, limit)
        )
    ]


@register_timeline_source("loyalty", "Loyalty points")
def loyalty_events(client_id: int, before: datetime | None, limit: int) -> list[TimelineEvent]:
    query = (
        select(
            LoyaltyTransaction.id,
            LoyaltyTransaction.points,
            LoyaltyTransaction.balance_after,
            LoyaltyTransaction.reason,
            LoyaltyTransaction.note,
            User.username,
            LoyaltyTransaction.created_at,
        )
        .outerjoin(User, User.id == LoyaltyTransaction.created_by_id)
        .where(LoyaltyTransaction.client_id == client_id)
    )
    verbs = {"earn": "earned", "redeem": "redeemed", "adjust": "adjusted"}
    return [
        TimelineEvent(
            at=created_at,
            kind="loyalty",
            title=f"{abs(points)} loyalty point(s) {verbs.get(reason, reason)}",
            detail=f"{note + '; ' if note else ''}{balance_after} points after",
            url=f"/loyaltytransactionview/show/{transaction_id}",
            who=username,
        )
        for transaction_id, points, balance_after, reason, note, username, created_at in _rows(
            _bounded(query, LoyaltyTransaction.created_at, before, limit)
        )
    ]
