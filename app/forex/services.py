"""Exchanges: a quote at the current rate less the desk's spread, then its execution.

The client sells ``sell_amount`` of X and receives ``buy_amount`` of Y at ``client_rate =
mid_rate * (1 - spread_bps / 10000)``, rounded down to the cent (the desk never pays out a
fraction it did not price). Execution posts one entry of four lines, balanced per currency:

- Dr client wallets-X / Cr forex reserve-X  (the desk now owns the client's X)
- Dr forex reserve-Y / Cr client wallets-Y  (the desk's Y goes to the client)

and changes the two wallets and the two reserves in the same transaction, after locking their
rows in one fixed order. The spread is the desk's margin: the difference between
``client_rate`` and ``mid_rate`` on the exchange record (no income line, the legs being in two
currencies). Points are awarded in the same transaction (``app.loyalty.services``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from flask import current_app
from sqlalchemy import select

from app.clients.models import Client
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.localtime import format_local
from app.core.types import utcnow
from app.core.validators import parse_id, parse_money
from app.extensions import db
from app.forex import wallets
from app.forex.models import FxExchange
from app.forex.rates import EIGHT_PLACES, current_rate, require_rate
from app.ledger import services as ledger
from app.security.scoping import current_actor

CENT = Decimal("0.01")


def spread_bps() -> int:
    return int(current_app.config.get("CRM_FX_SPREAD_BPS", 50))


def quote_seconds() -> int:
    return int(current_app.config.get("CRM_FX_QUOTE_SECONDS", 60))


def client_rate(mid: Decimal, spread: int) -> Decimal:
    """The rate the client gets: the mid rate less the spread (the client receives less)."""
    return (mid * (1 - Decimal(spread) / Decimal(10000))).quantize(EIGHT_PLACES, ROUND_DOWN)


def _client(client_id: object) -> Client:
    client = db.session.get(Client, parse_id(client_id, "client_id"))
    if client is None:
        raise NotFound("no such client.")
    return client


def quote(data: dict) -> FxExchange:
    """Price an exchange (``client_id``, ``sell_currency``, ``buy_currency``, ``sell_amount``)
    and keep the quote for ``CRM_FX_QUOTE_SECONDS``; nothing moves yet."""
    client = _client(data.get("client_id"))
    sell = wallets.active_currency(data.get("sell_currency"), "sell_currency")
    buy = wallets.active_currency(data.get("buy_currency"), "buy_currency")
    if sell.code == buy.code:
        raise FieldError("must differ from the currency sold.", "buy_currency")
    amount = parse_money(data.get("sell_amount"), "sell_amount")
    mid = require_rate(sell.code, buy.code)
    spread = spread_bps()
    rate = client_rate(mid, spread)
    bought = (amount * rate).quantize(CENT, ROUND_DOWN)
    if bought <= 0:
        raise FieldError(f"is too small: it buys less than 0.01 {buy.code}.", "sell_amount")
    if bought > Decimal("9999999999999999.99"):
        raise FieldError("is too large.", "sell_amount")
    actor = current_actor()
    exchange = FxExchange(
        client_id=client.id,
        sell_currency=sell.code,
        buy_currency=buy.code,
        sell_amount=amount,
        buy_amount=bought,
        mid_rate=mid,
        spread_bps=spread,
        client_rate=rate,
        status="quoted",
        quote_expires_at=utcnow() + timedelta(seconds=quote_seconds()),
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(exchange)
    db.session.flush()
    return exchange


def execute(exchange_id: int) -> FxExchange:
    """Carry out a quote: both wallets and both reserves change with one ledger entry, or
    nothing does. Refused when the quote expired or was executed (409), when the client's
    wallet cannot cover the sale (422) or the desk's reserve the purchase (409)."""
    from app.loyalty.services import award_for_exchange

    exchange = db.session.execute(
        select(FxExchange)
        .where(FxExchange.id == exchange_id)
        .with_for_update(of=FxExchange)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if exchange is None:
        raise NotFound("no such exchange.")
    if exchange.status == "executed":
        raise ConflictError(
            f"{exchange.reference} was already executed at {format_local(exchange.executed_at)}."
        )
    if exchange.quote_expires_at <= utcnow():
        raise ConflictError(
            f"the quote {exchange.reference} expired at "
            f"{format_local(exchange.quote_expires_at, seconds=True)}; "
            "ask for a new quote."
        )
    sell_ccy, buy_ccy = exchange.sell_currency, exchange.buy_currency
    sell_wallet = wallets.wallet_for(exchange.client_id, sell_ccy, create=False)
    if sell_wallet is None:
        wallets.require_cover(None, sell_ccy, exchange.sell_amount, "sell_amount")
    buy_wallet = wallets.wallet_for(exchange.client_id, buy_ccy)
    sell_reserve = wallets.reserve_for(sell_ccy)
    buy_reserve = wallets.reserve_for(buy_ccy)
    wallets.lock_rows([sell_wallet, buy_wallet], [sell_reserve, buy_reserve])
    wallets.require_cover(sell_wallet, sell_ccy, exchange.sell_amount, "sell_amount")
    if buy_reserve.balance < exchange.buy_amount:
        raise ConflictError(
            f"the desk's {buy_ccy} reserve holds {buy_reserve.balance:,.2f}, less than the "
            f"{exchange.buy_amount:,.2f} this exchange pays out.",
            "buy_currency",
        )
    code = ledger.currency_code
    entry = ledger.post(
        wallets.today(),
        f"{exchange.reference}: {exchange.sell_amount} {sell_ccy} -> "
        f"{exchange.buy_amount} {buy_ccy} at {exchange.client_rate}",
        [
            ledger.debit(code(ledger.CLIENT_WALLETS, sell_ccy), exchange.sell_amount),
            ledger.credit(code(ledger.FX_RESERVE, sell_ccy), exchange.sell_amount),
            ledger.debit(code(ledger.FX_RESERVE, buy_ccy), exchange.buy_amount),
            ledger.credit(code(ledger.CLIENT_WALLETS, buy_ccy), exchange.buy_amount),
        ],
        exchange,
    )
    db.session.flush()
    lines = list(entry.lines)
    wallets.move_wallet(sell_wallet, lines[0], -exchange.sell_amount)
    wallets.move_reserve(sell_reserve, exchange.sell_amount)
    wallets.move_reserve(buy_reserve, -exchange.buy_amount)
    wallets.move_wallet(buy_wallet, lines[3], exchange.buy_amount)
    exchange.status = "executed"
    exchange.executed_at = utcnow()
    exchange.journal_entry_id = entry.id
    exchange.points_earned = award_for_exchange(exchange)
    db.session.flush()
    return exchange


def base_value(amount: Decimal, currency: str) -> Decimal | None:
    """``amount`` of ``currency`` in the base currency at the current mid rate (None if the
    pair has no rate)."""
    base = wallets.base_currency()
    rate = current_rate(currency, base)
    return None if rate is None else (amount * rate).quantize(CENT, ROUND_DOWN)
