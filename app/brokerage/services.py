"""Brokerage rules: instruments, trades (record, settle, cancel), holdings and suitability.

Average cost method (weighted average, fees included in cost), applied when a trade settles:

- buy of q units for gross g (q x price, rounded half-up to the cent) with fees f:
  quantity += q; cost += g + f.
- sell of q units for gross g with fees f: cost of sold = cost x q / quantity rounded half-up to
  the cent (the whole remaining cost when every unit is sold, so nothing is left over);
  realised P&L = g - f - cost of sold; quantity -= q; cost -= cost of sold.

A position (``Position``) keeps this running state per client and instrument; only
``settle_trade`` writes it, with the position row locked (``SELECT ... FOR UPDATE``), and
``rebuild_positions`` recomputes it from the settled trades in settlement order.

A sell is refused (422 on ``quantity``) when it is more than the settled holding less the
client's pending sells of the instrument; settlement checks again under the lock. Trades move
pending -> settled or pending -> cancelled; any other move is a 409.

Ledger postings at settlement (the trade is the entry's source), in the base currency:

- buy:  Dr cash (gross + fees), Cr exchange clearing (gross), Cr brokerage income (fees);
- sell: Dr exchange clearing (gross), Cr cash (gross - fees), Cr brokerage income (fees).

Instruments are kept in the base currency only (``CRM_BASE_CURRENCY``): a holding's cost, its
market value and the postings are then in one currency.

Suitability: risk levels rank conservative < moderate < aggressive. A trade in an instrument
whose risk level is above the client's risk profile (or for a client with no risk profile) is
saved with ``suitability_flag`` set and a reason naming both; it is not refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, inspect, or_, select
from sqlalchemy.exc import IntegrityError

from app.brokerage.models import (
    INSTRUMENT_KINDS,
    RISK_LEVELS,
    SIDES,
    Instrument,
    Position,
    Trade,
)
from app.clients.models import Client
from app.core.audit import record_event
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text, parse_choice, parse_date, parse_money
from app.extensions import db
from app.ledger import services as ledger
from app.security.roles import allowed
from app.security.scoping import Actor, current_actor

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_QUANTITY = Decimal("999999999999")
MAX_UNIT_PRICE = Decimal("999999999999")
MAX_MONEY = Decimal("9999999999999999.99")
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.&_-]{0,19}")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def may(actor: Actor | None, action: str, resource: str = "Trade") -> bool:
    """Whether the actor's roles grant ``action`` on ``resource`` (None: the system)."""
    if actor is None:
        return True
    return any(allowed(role, resource, action) for role in actor.roles)


# ---- input checks ----


def parse_units(value: Any, field: str, high: Decimal, places: int = 6) -> Decimal:
    """A positive number with at most ``places`` decimals, at most ``high``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldError("is required.", field)
    if isinstance(value, bool):
        raise FieldError("is not a number.", field)
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except ArithmeticError as exc:
        raise FieldError(f"is not a number: {str(value)[:40]!r}.", field) from exc
    if not number.is_finite():
        raise FieldError("must be a finite number.", field)
    if number <= 0:
        raise FieldError("must be more than zero.", field)
    if number > high:
        raise FieldError(f"is too large (at most {high:,}).", field)
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise FieldError(f"has more than {places} decimal places.", field)
    return number.quantize(Decimal(1).scaleb(-places))


def _today() -> date:
    return datetime.now(UTC).date()


# ---- instruments ----


@without_autoflush
def prepare_instrument(instrument: Instrument) -> Instrument:
    """Check an instrument before it is saved: a unique upper-case symbol, a name, a known kind
    and risk level, the base currency, a positive price if one is given."""
    symbol = (clean_text(instrument.symbol, "symbol", 20, required=True) or "").upper()
    if not SYMBOL.fullmatch(symbol):
        raise FieldError("uses letters, digits and . & _ - only (at most 20).", "symbol")
    clash = select(Instrument.id).where(Instrument.symbol == symbol)
    if instrument.id is not None:
        clash = clash.where(Instrument.id != instrument.id)
    if db.session.scalar(clash) is not None:
        raise ConflictError(f"an instrument {symbol} already exists.", "symbol")
    instrument.symbol = symbol
    instrument.name = clean_text(instrument.name, "name", 200, required=True)
    instrument.kind = parse_choice(instrument.kind, "kind", INSTRUMENT_KINDS)
    instrument.exchange = clean_text(instrument.exchange, "exchange", 20)
    instrument.exchange = instrument.exchange.upper() if instrument.exchange else None
    base = ledger.base_currency()
    currency = (clean_text(instrument.currency, "currency", 3) or base).upper()
    if currency != base:
        raise FieldError(
            f"instruments are traded in the books' currency ({base}) only; {currency} is not "
            "supported yet.",
            "currency",
        )
    instrument.currency = currency
    instrument.risk_level = parse_choice(instrument.risk_level, "risk_level", RISK_LEVELS)
    if instrument.last_price is not None:
        instrument.last_price = parse_units(instrument.last_price, "last_price", MAX_UNIT_PRICE)
        if (
            instrument.last_price_at is None
            or inspect(instrument).attrs.last_price.history.has_changes()
        ):
            instrument.last_price_at = utcnow()
    if instrument.active is None:
        instrument.active = True
    return instrument


# ---- suitability ----


def suitability(client: Client, instrument: Instrument) -> tuple[bool, str | None]:
    """Whether a trade of ``instrument`` for ``client`` is above the client's risk profile."""
    level = instrument.risk_level
    profile = client.risk_profile
    if profile is None:
        return True, (f"{instrument.symbol} is {level} risk and {client.name} has no risk profile.")
    if RISK_LEVELS.index(level) > RISK_LEVELS.index(profile):
        return True, (
            f"{instrument.symbol} is {level} risk, above {client.name}'s {profile} risk profile."
        )
    return False, None


# ---- trades ----


def _client(client_id: Any) -> Client:
    try:
        pk = int(client_id)
    except (TypeError, ValueError) as exc:
        raise FieldError("choose a client.", "client_id") from exc
    client = db.session.scalar(select(Client).where(Client.id == pk))
    if client is None:
        raise FieldError("no such client.", "client_id")
    return client


def _instrument(instrument_id: Any) -> Instrument:
    try:
        pk = int(instrument_id)
    except (TypeError, ValueError) as exc:
        raise FieldError("choose an instrument.", "instrument_id") from exc
    instrument = db.session.scalar(select(Instrument).where(Instrument.id == pk))
    if instrument is None:
        raise FieldError("no such instrument.", "instrument_id")
    return instrument


def _locked_position(client_id: int, instrument_id: int) -> Position | None:
    """The position row, locked until the transaction ends (``FOR UPDATE`` on PostgreSQL) and
    re-read so its figures are current."""
    return db.session.execute(
        select(Position)
        .where(Position.client_id == client_id, Position.instrument_id == instrument_id)
        .with_for_update(of=Position)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def pending_sells(client_id: int, instrument_id: int, excluding: int | None = None) -> Decimal:
    query = select(func.coalesce(func.sum(Trade.quantity), 0)).where(
        Trade.client_id == client_id,
        Trade.instrument_id == instrument_id,
        Trade.side == "sell",
        Trade.status == "pending",
    )
    if excluding is not None:
        query = query.where(Trade.id != excluding)
    return Decimal(str(db.session.scalar(query)))


def available_to_sell(client_id: int, instrument_id: int) -> Decimal:
    """The settled holding less the pending sells (locks the position row)."""
    position = _locked_position(client_id, instrument_id)
    held = position.quantity if position is not None else Decimal("0")
    return held - pending_sells(client_id, instrument_id)


@without_autoflush
def prepare_trade(trade: Trade) -> Trade:
    """Check a new trade and complete it (gross amount, suitability, author). Refused before
    anything is written: unknown client or instrument, bad side, quantity, price, fees or date,
    a sell beyond what the client may sell. Trades are never edited (cancel instead)."""
    if trade.id is not None:
        raise ConflictError("a trade cannot be edited; cancel it and record a new one.")
    client = trade.client if trade.client is not None else _client(trade.client_id)
    instrument = (
        trade.instrument if trade.instrument is not None else _instrument(trade.instrument_id)
    )
    if not instrument.active:
        raise FieldError(f"{instrument.symbol} is not active.", "instrument_id")
    side = parse_choice(trade.side, "side", SIDES)
    quantity = parse_units(trade.quantity, "quantity", MAX_QUANTITY)
    price = parse_units(trade.price, "price", MAX_UNIT_PRICE)
    fees = parse_money(ZERO if trade.fees is None else trade.fees, "fees", allow_zero=True)
    trade_date = parse_date(trade.trade_date, "trade_date") or _today()
    if trade_date > _today():
        raise FieldError(f"{trade_date} is in the future.", "trade_date")
    gross = cents(quantity * price)
    if gross <= 0:
        raise FieldError("quantity x price rounds to 0.00; the trade has no value.", "quantity")
    if gross + fees > MAX_MONEY:
        raise FieldError("the trade's value is too large.", "quantity")
    if side == "sell":
        if fees > gross:
            raise FieldError(f"fees {fees} are more than the sale's value {gross}.", "fees")
        available = available_to_sell(client.id, instrument.id)
        if quantity > available:
            raise FieldError(
                f"{client.name} can sell at most {available.normalize():f} {instrument.symbol} "
                "(settled holding less pending sells).",
                "quantity",
            )
    flag, reason = suitability(client, instrument)
    actor = current_actor()
    trade.client, trade.client_id = client, client.id
    trade.instrument, trade.instrument_id = instrument, instrument.id
    trade.side, trade.quantity, trade.price, trade.fees = side, quantity, price, fees
    trade.gross_amount = gross
    trade.trade_date = trade_date
    trade.status = "pending"
    trade.suitability_flag, trade.suitability_reason = flag, reason
    trade.created_by_id = actor.user_id if actor else None
    return trade


TRADE_FIELDS = ("client_id", "instrument_id", "side", "quantity", "price", "fees", "trade_date")


def record_trade(data: Mapping[str, Any]) -> Trade:
    """A new pending trade from submitted values (screen form or API body); the caller commits."""
    trade = prepare_trade(
        Trade(
            **{name: data.get(name) for name in TRADE_FIELDS if name != "trade_date"},
            trade_date=data.get("trade_date"),
        )
    )
    db.session.add(trade)
    db.session.flush()
    return trade


def get_trade(trade_id: Any, lock: bool = False) -> Trade:
    """The trade as the actor sees it (another agent's client's trade is not found)."""
    try:
        pk = int(trade_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("no such trade.") from exc
    query = select(Trade).where(Trade.id == pk).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update(of=Trade)
    trade = db.session.scalar(query)
    if trade is None:
        raise NotFound("no such trade.")
    return trade


@dataclass
class Holding:
    """Running weighted-average-cost state of one holding."""

    quantity: Decimal = Decimal("0")
    cost: Decimal = ZERO
    realised: Decimal = ZERO


def apply_buy(state: Holding, quantity: Decimal, gross: Decimal, fees: Decimal) -> None:
    state.quantity += quantity
    state.cost += gross + fees


def apply_sell(
    state: Holding, quantity: Decimal, gross: Decimal, fees: Decimal
) -> tuple[Decimal, Decimal]:
    """Take ``quantity`` units out at average cost; returns (cost of sold, realised P&L)."""
    if quantity > state.quantity:
        raise FieldError(
            f"only {state.quantity.normalize():f} units are held; cannot sell "
            f"{quantity.normalize():f}.",
            "quantity",
        )
    if quantity == state.quantity:
        cost_of_sold = state.cost
    else:
        cost_of_sold = cents(state.cost * quantity / state.quantity)
    realised = gross - fees - cost_of_sold
    state.quantity -= quantity
    state.cost -= cost_of_sold
    state.realised += realised
    return cost_of_sold, realised


def _position_for_update(client_id: int, instrument_id: int) -> Position:
    """The position row locked; created (empty) first if the client never held it. Two first
    buys at once: the loser of the insert finds the winner's row."""
    position = _locked_position(client_id, instrument_id)
    if position is not None:
        return position
    try:
        with db.session.begin_nested():
            db.session.add(
                Position(
                    client_id=client_id,
                    instrument_id=instrument_id,
                    quantity=Decimal("0"),
                    cost=ZERO,
                    realised_pnl=ZERO,
                )
            )
    except IntegrityError:
        pass
    return _locked_position(client_id, instrument_id)


def settle_trade(trade_id: Any, settled_on: Any = None) -> Trade:
    """Settle a pending trade: update the position at average cost (row locked), record the
    sell's cost of sold and realised P&L, post to the ledger. The caller commits."""
    trade = get_trade(trade_id, lock=True)
    if trade.status != "pending":
        raise ConflictError(f"{trade.reference} is {trade.status}; only a pending trade settles.")
    settled_on = parse_date(settled_on, "settled_on") or _today()
    if settled_on < trade.trade_date:
        raise FieldError(f"{settled_on} is before the trade date {trade.trade_date}.", "settled_on")
    position = _position_for_update(trade.client_id, trade.instrument_id)
    state = Holding(position.quantity, position.cost, position.realised_pnl)
    symbol = trade.instrument.symbol
    if trade.side == "buy":
        apply_buy(state, trade.quantity, trade.gross_amount, trade.fees)
        legs = [
            ledger.debit(ledger.CASH, trade.gross_amount + trade.fees),
            ledger.credit(ledger.EXCHANGE_CLEARING, trade.gross_amount),
            ledger.credit(ledger.BROKERAGE_INCOME, trade.fees),
        ]
    else:
        trade.cost_of_sold, trade.realised_pnl = apply_sell(
            state, trade.quantity, trade.gross_amount, trade.fees
        )
        legs = [
            ledger.debit(ledger.EXCHANGE_CLEARING, trade.gross_amount),
            ledger.credit(ledger.CASH, trade.gross_amount - trade.fees),
            ledger.credit(ledger.BROKERAGE_INCOME, trade.fees),
        ]
    position.quantity, position.cost, position.realised_pnl = (
        state.quantity,
        state.cost,
        state.realised,
    )
    trade.status = "settled"
    trade.settled_at = utcnow()
    ledger.post(
        settled_on,
        f"{trade.reference}: {trade.side} {trade.quantity.normalize():f} {symbol} @ "
        f"{trade.price.normalize():f}",
        legs,
        trade,
    )
    db.session.flush()
    record_event("settled", trade, detail=f"{trade.reference} settled on {settled_on}")
    return trade


def cancel_trade(trade_id: Any) -> Trade:
    trade = get_trade(trade_id, lock=True)
    if trade.status != "pending":
        raise ConflictError(f"{trade.reference} is {trade.status}; only a pending trade cancels.")
    trade.status = "cancelled"
    trade.cancelled_at = utcnow()
    db.session.flush()
    record_event("cancelled", trade, detail=f"{trade.reference} cancelled")
    return trade


def rebuild_positions(client_id: int | None = None) -> dict[tuple[int, int], Holding]:
    """Recompute every holding from the settled trades, in settlement order."""
    query = select(Trade).where(Trade.status == "settled").order_by(Trade.settled_at, Trade.id)
    if client_id is not None:
        query = query.where(Trade.client_id == client_id)
    states: dict[tuple[int, int], Holding] = {}
    for trade in db.session.scalars(query):
        state = states.setdefault((trade.client_id, trade.instrument_id), Holding())
        if trade.side == "buy":
            apply_buy(state, trade.quantity, trade.gross_amount, trade.fees)
        else:
            apply_sell(state, trade.quantity, trade.gross_amount, trade.fees)
    return states


def verify_positions(client_id: int | None = None) -> list[str]:
    """Differences between the stored positions and those rebuilt from settled trades."""
    rebuilt = rebuild_positions(client_id)
    query = select(Position)
    if client_id is not None:
        query = query.where(Position.client_id == client_id)
    stored = {(p.client_id, p.instrument_id): p for p in db.session.scalars(query)}
    problems = []
    for key in sorted(set(rebuilt) | set(stored)):
        want, have = rebuilt.get(key, Holding()), stored.get(key)
        got = Holding(have.quantity, have.cost, have.realised_pnl) if have else Holding()
        if (want.quantity, want.cost, want.realised) != (got.quantity, got.cost, got.realised):
            problems.append(f"client {key[0]} instrument {key[1]}: stored {got}, trades {want}")
    return problems


# ---- the portfolio ----


@dataclass(frozen=True)
class PortfolioRow:
    instrument_id: int
    symbol: str
    name: str
    currency: str
    quantity: Decimal
    cost: Decimal
    average_cost: Decimal | None
    last_price: Decimal | None
    last_price_at: datetime | None
    market_value: Decimal | None
    unrealised_pnl: Decimal | None
    realised_pnl: Decimal
    price_stale: bool = False
    """Held, priced, and the price is older than ``CRM_PRICE_STALE_MINUTES`` (or of no known
    time): its market value may be out of date."""

    def as_json(self) -> dict[str, Any]:
        def text(value):
            return None if value is None else f"{value:f}"

        return {
            "instrument_id": self.instrument_id,
            "symbol": self.symbol,
            "name": self.name,
            "currency": self.currency,
            "quantity": text(self.quantity.normalize()) if self.quantity else "0",
            "cost": text(self.cost),
            "average_cost": text(self.average_cost),
            "last_price": text(self.last_price),
            "last_price_at": self.last_price_at.isoformat() if self.last_price_at else None,
            "market_value": text(self.market_value),
            "unrealised_pnl": text(self.unrealised_pnl),
            "realised_pnl": text(self.realised_pnl),
            "price_stale": self.price_stale,
        }


@dataclass(frozen=True)
class Portfolio:
    client: Client
    rows: list[PortfolioRow] = field(default_factory=list)
    stale_after_minutes: int = 0

    @property
    def cost(self) -> Decimal:
        return sum((r.cost for r in self.rows), ZERO)

    @property
    def market_value(self) -> Decimal:
        return sum((r.market_value or ZERO for r in self.rows), ZERO)

    @property
    def unrealised_pnl(self) -> Decimal:
        return sum((r.unrealised_pnl or ZERO for r in self.rows), ZERO)

    @property
    def realised_pnl(self) -> Decimal:
        return sum((r.realised_pnl for r in self.rows), ZERO)

    @property
    def unpriced(self) -> list[str]:
        return [r.symbol for r in self.rows if r.quantity and r.last_price is None]

    @property
    def stale(self) -> list[PortfolioRow]:
        """Holdings valued at a stale price."""
        return [r for r in self.rows if r.price_stale]

    def as_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client.id,
            "client": self.client.name,
            "currency": ledger.base_currency(),
            "holdings": [row.as_json() for row in self.rows],
            "totals": {
                "cost": f"{self.cost:f}",
                "market_value": f"{self.market_value:f}",
                "unrealised_pnl": f"{self.unrealised_pnl:f}",
                "realised_pnl": f"{self.realised_pnl:f}",
            },
            "unpriced": self.unpriced,
            "stale_prices": [r.symbol for r in self.stale],
            "price_stale_after_minutes": self.stale_after_minutes,
        }


def get_client(client_id: Any) -> Client:
    """The client as the actor sees it (outside their scope: not found)."""
    try:
        pk = int(client_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("no such client.") from exc
    client = db.session.scalar(select(Client).where(Client.id == pk))
    if client is None:
        raise NotFound("no such client.")
    return client


def portfolio(client_id: Any) -> Portfolio:
    """The client's holdings (one query joining positions and instruments): quantity, average
    cost, market value at the last price, unrealised P&L (market value - cost) and realised P&L;
    holdings sold out stay listed for their realised P&L. A holding priced longer ago than
    ``CRM_PRICE_STALE_MINUTES`` is flagged ``price_stale``."""
    client = get_client(client_id)
    stale_minutes = int(current_app.config.get("CRM_PRICE_STALE_MINUTES") or 0)
    stale_before = utcnow() - timedelta(minutes=stale_minutes) if stale_minutes > 0 else None
    rows = db.session.execute(
        select(
            Instrument.id,
            Instrument.symbol,
            Instrument.name,
            Instrument.currency,
            Instrument.last_price,
            Instrument.last_price_at,
            Position.quantity,
            Position.cost,
            Position.realised_pnl,
        )
        .join(Instrument, Instrument.id == Position.instrument_id)
        .where(
            Position.client_id == client.id,
            or_(Position.quantity > 0, Position.realised_pnl != 0),
        )
        .order_by(Instrument.symbol)
    ).all()
    holdings = []
    for iid, symbol, name, currency, price, price_at, quantity, cost, realised in rows:
        quantity, cost, realised = Decimal(quantity), Decimal(cost), Decimal(realised)
        value = cents(quantity * Decimal(price)) if price is not None else None
        holdings.append(
            PortfolioRow(
                instrument_id=iid,
                symbol=symbol,
                name=name,
                currency=currency,
                quantity=quantity,
                cost=cost,
                average_cost=cents(cost / quantity) if quantity else None,
                last_price=price,
                last_price_at=price_at,
                market_value=value,
                unrealised_pnl=(value - cost) if value is not None else None,
                realised_pnl=realised,
                price_stale=bool(
                    stale_before is not None
                    and quantity
                    and price is not None
                    and (price_at is None or price_at < stale_before)
                ),
            )
        )
    return Portfolio(client, holdings, stale_minutes)


def suitability_flags(limit: int = 10) -> tuple[int, list[Trade]]:
    """How many trades are flagged (not cancelled), and the latest ones: one scoped query (the
    count is a window over the same rows)."""
    rows = db.session.execute(
        select(Trade, func.count().over())
        .where(Trade.suitability_flag.is_(True), Trade.status != "cancelled")
        .order_by(Trade.id.desc())
        .limit(limit)
    ).all()
    return (rows[0][1] if rows else 0), [trade for trade, _ in rows]
