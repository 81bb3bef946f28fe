"""The brokerage desk on a client's timeline: each trade (side, quantity, instrument, price,
status, a suitability flag) at the time it was recorded. One query; importing registers it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.brokerage.models import Instrument, Trade
from app.clients.timeline import TimelineEvent, _bounded, _rows, register_timeline_source


@register_timeline_source("trade", "Trades")
def trade_events(client_id: int, before: datetime | None, limit: int) -> list[TimelineEvent]:
    query = (
        select(
            Trade.id,
            Trade.side,
            Trade.quantity,
            Instrument.symbol,
            Trade.price,
            Trade.status,
            Trade.suitability_flag,
            Trade.suitability_reason,
            Trade.created_at,
        )
        .join(Instrument, Instrument.id == Trade.instrument_id)
        .where(Trade.client_id == client_id)
    )
    return [
        TimelineEvent(
            at=created_at,
            kind="trade",
            title=f"TR-{trade_id:06d}: {side} {quantity.normalize():f} {symbol} @ "
            f"{price.normalize():f} ({status})",
            detail=f"Suitability: {reason}" if flag else None,
            url=f"/tradeview/show/{trade_id}",
        )
        for trade_id, side, quantity, symbol, price, status, flag, reason, created_at in _rows(
            _bounded(query, Trade.created_at, before, limit)
        )
    ]
