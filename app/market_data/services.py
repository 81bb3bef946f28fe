"""Prices and FX rates a provider pushes, beside the pulled feeds.

A delivery is checked (signature and timestamp, ``app.core.signing``), read, and then recorded
through the pulled feeds' own services: ``app.brokerage.prices.apply_prices`` for a price,
``app.forex.rates.load_rates`` for a rate. Each event id is kept once (``MarketEvent``): a
replay answers ``duplicate`` and changes nothing. A price or rate older than the one already
held is kept as ``ignored`` and overwrites nothing. Bad input is refused with a 4xx naming the
problem; nothing is written but an audit row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.audit import Entry, append_entries, record_event
from app.core.errors import FieldError
from app.core.signing import SignatureRefused, verify_signature
from app.core.types import utcnow
from app.extensions import db
from app.market_data.models import MarketEvent
from app.security.scoping import UNSCOPED, acting_as_system

SIGNATURE_HEADER = "Market-Signature"
KIND_NAMES = {"price": "price", "fx_rate": "FX rate"}


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _tolerance() -> int:
    return int(current_app.config.get("CRM_PRICE_WEBHOOK_TOLERANCE_SECONDS") or 300)


def _refuse(kind: str, status: int, message: str, event_id: str | None = None) -> WebhookAnswer:
    record_event(
        "market webhook refused",
        record_type="market_event",
        record_id=event_id,
        detail=f"{KIND_NAMES[kind]}: {message}"[:2000],
    )
    return WebhookAnswer(status, {"message": message})


def _read(payload: bytes) -> dict[str, Any]:
    try:
        # Numbers are read as Decimal, never float.
        body = json.loads(payload, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused(400, "the body is not JSON.") from exc
    if not isinstance(body, dict):
        raise _Refused(400, "the body is not a JSON object.")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 120:
        raise _Refused(400, "the event has no id (a string of at most 120 characters).")
    return body


def _moment(value: Any) -> datetime:
    """An ISO 8601 time (UTC when it names no zone), not ahead of now beyond the tolerance."""
    try:
        moment = datetime.fromisoformat(str(value or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(
            f"{str(value)[:40]!r} is not an ISO 8601 date and time.", "as_of"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > utcnow() + timedelta(seconds=_tolerance()):
        raise FieldError(f"{moment.isoformat()} is in the future.", "as_of")
    return moment


def _audit(record: MarketEvent) -> None:
    """The audit row of an accepted event, in its transaction."""
    db.session.flush()
    detail = f"{record.kind} {record.subject} {record.value} as of {record.as_of.isoformat()}: "
    entry = Entry(
        "market event",
        "market_event",
        str(record.id),
        detail=(detail + f"{record.outcome}, {record.detail}")[:2000],
    )
    append_entries(db.session.connection(), [entry])
    db.session.info["crm_audit_chain_locked"] = True


def _record_price(event_id: str, body: dict[str, Any]) -> MarketEvent:
    from app.brokerage.models import Instrument
    from app.brokerage.prices import Quote, apply_prices
    from app.brokerage.services import MAX_UNIT_PRICE, parse_units

    symbol = str(body.get("symbol") or "").strip().upper()
    if not symbol:
        raise FieldError("is required.", "symbol")
    price = parse_units(body.get("price"), "price", MAX_UNIT_PRICE)
    moment = _moment(body.get("as_of"))
    # The row lock orders two deliveries for the same instrument (PostgreSQL); the later
    # timestamp wins whichever commits first.
    instrument = db.session.scalar(
        select(Instrument).where(Instrument.symbol == symbol[:20]).with_for_update(),
        execution_options=UNSCOPED,
    )
    if instrument is None:
        raise FieldError(f"{symbol[:20]} is not an instrument FinCRM knows.", "symbol")
    event = MarketEvent(
        event_id=event_id, kind="price", subject=instrument.symbol, value=price, as_of=moment
    )
    held_at = instrument.last_price_at
    if held_at is not None and moment < held_at:
        event.outcome = "ignored"
        event.detail = (
            f"older than the price held ({instrument.last_price} as of {held_at.isoformat()})"
        )
    else:
        before = instrument.last_price
        apply_prices({instrument.symbol: Quote(price, moment.date(), moment)}, "webhook")
        event.outcome = "applied"
        event.detail = f"last price {before if before is not None else 'none'} -> {price}"
    return event


def _record_rate(event_id: str, body: dict[str, Any]) -> MarketEvent:
    from app.forex.models import Currency
    from app.forex.rates import _latest, load_rates, parse_rate_row

    known = set(db.session.scalars(select(Currency.code), execution_options=UNSCOPED))
    raw = {name: body.get(name) for name in ("base", "quote", "rate", "as_of")}
    try:
        row = parse_rate_row(raw, known)
    except ValueError as exc:
        raise FieldError(f"{exc}.") from None
    moment = _moment(raw["as_of"])
    # One pair's deliveries queue behind the base currency's row (PostgreSQL).
    db.session.scalar(
        select(Currency.id).where(Currency.code == row.base).with_for_update(),
        execution_options=UNSCOPED,
    )
    event = MarketEvent(
        event_id=event_id,
        kind="fx_rate",
        subject=f"{row.base}/{row.quote}",
        value=row.rate,
        as_of=moment,
    )
    held = _latest(row.base, row.quote)
    if held is not None and moment < held.as_of:
        event.outcome = "ignored"
        event.detail = f"older than the rate held ({held.rate} as of {held.as_of.isoformat()})"
        return event
    added = load_rates(_OneRate(raw))
    if added:
        event.outcome = "applied"
        event.detail = f"rate {held.rate if held else 'none'} -> {row.rate}"
    else:
        event.outcome = "ignored"
        event.detail = "a rate for this pair at this time is already held"
    return event


class _OneRate:
    """The pushed rate as a one-row feed, so ``load_rates`` records it as it records a file."""

    name = "webhook"

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def fetch(self) -> list[dict[str, Any]]:
        return [self.raw]


RECORDERS = {"price": _record_price, "fx_rate": _record_rate}


def receive_market_webhook(kind: str, payload: bytes, headers: Mapping[str, str]) -> WebhookAnswer:
    """Check, record and answer one delivery of a ``price`` or an ``fx_rate``; commits what it
    recorded (one transaction), or writes nothing but an audit row."""
    secret = current_app.config.get("CRM_PRICE_WEBHOOK_SECRET") or ""
    try:
        verify_signature(secret, payload, headers.get(SIGNATURE_HEADER), _tolerance())
        body = _read(payload)
    except SignatureRefused as exc:
        return _refuse(kind, exc.status, exc.message)
    except _Refused as exc:
        return _refuse(kind, exc.status, exc.message)
    event_id = body["id"].strip()
    with acting_as_system():
        seen = db.session.scalar(select(MarketEvent).where(MarketEvent.event_id == event_id))
        if seen is not None:
            return WebhookAnswer(200, _answer("duplicate", seen))
        try:
            event = RECORDERS[kind](event_id, body)
            db.session.add(event)
            _audit(event)
            db.session.commit()
        except FieldError as exc:
            db.session.rollback()
            return _refuse(kind, 422, str(exc), event_id)
        except IntegrityError:
            # The same event delivered twice at once: the other delivery recorded it.
            db.session.rollback()
            seen = db.session.scalar(select(MarketEvent).where(MarketEvent.event_id == event_id))
            if seen is None:
                raise
            return WebhookAnswer(200, _answer("duplicate", seen))
    return WebhookAnswer(200, _answer(event.outcome, event))


def _answer(status: str, event: MarketEvent) -> dict[str, Any]:
    return {
        "status": status,
        "event": event.event_id,
        "subject": event.subject,
        "as_of": event.as_of.isoformat(),
        "outcome": f"{event.outcome}: {event.detail}",
    }
