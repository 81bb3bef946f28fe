"""The forex desk and loyalty on a client's timeline: executed exchanges (what was sold for
what, at which rate, the points earned) and every change of the client's points. Importing
this module registers them."""

from __future__ import annotations

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, select

from app.clients.timeline import TimelineEvent, register_timeline_source
from app.forex.models import FxExchange
from app.loyalty.models import LoyaltyTransaction


def _exchange_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="exchange",
        title=f"FX-{row.id:06d}: sold {row.sell_amount:,.2f} {row.sell_currency} for "
        f"{row.buy_amount:,.2f} {row.buy_currency}",
        detail=f"at {row.client_rate}; {row.points_earned} loyalty point(s) earned",
        url=f"/fxexchangeview/show/{row.id}",
        who=row.username,
    )


@register_timeline_source("exchange", "Exchanges", _exchange_event)
def exchange_rows(client_id: int) -> Select:
    return (
        select(
            FxExchange.executed_at.label("at"),
            FxExchange.id,
            FxExchange.sell_amount,
            FxExchange.sell_currency,
            FxExchange.buy_amount,
            FxExchange.buy_currency,
            FxExchange.client_rate,
            FxExchange.points_earned,
            User.username,
        )
        .outerjoin(User, User.id == FxExchange.created_by_id)
        .where(FxExchange.client_id == client_id, FxExchange.status == "executed")
    )


LOYALTY_VERBS = {"earn": "earned", "redeem": "redeemed", "adjust": "adjusted"}


def _loyalty_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="loyalty",
        title=f"{abs(row.points)} loyalty point(s) {LOYALTY_VERBS.get(row.reason, row.reason)}",
        detail=f"{row.note + '; ' if row.note else ''}{row.balance_after} points after",
        url=f"/loyaltytransactionview/show/{row.id}",
        who=row.username,
    )


@register_timeline_source("loyalty", "Loyalty points", _loyalty_event)
def loyalty_rows(client_id: int) -> Select:
    return (
        select(
            LoyaltyTransaction.created_at.label("at"),
            LoyaltyTransaction.id,
            LoyaltyTransaction.points,
            LoyaltyTransaction.balance_after,
            LoyaltyTransaction.reason,
            LoyaltyTransaction.note,
            User.username,
        )
        .outerjoin(User, User.id == LoyaltyTransaction.created_by_id)
        .where(LoyaltyTransaction.client_id == client_id)
    )
