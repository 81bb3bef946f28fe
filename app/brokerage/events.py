"""The brokerage desk on a client's timeline: each trade (side, quantity, instrument, price,
status, a suitability flag) at the time it was recorded. Importing this module registers it."""

from __future__ import annotations

from sqlalchemy import Select, select

from app.brokerage.models import Instrument, Trade
from app.clients.timeline import TimelineEvent, register_timeline_source


def _trade_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="trade",
        title=f"TR-{row.id:06d}: {row.side} {row.quantity.normalize():f} {row.symbol} @ "
        f"{row.price.normalize():f} ({row.status})",
        detail=f"Suitability: {row.suitability_reason}" if row.suitability_flag else None,
        url=f"/tradeview/show/{row.id}",
    )


@register_timeline_source("trade", "Trades", _trade_event)
def trade_rows(client_id: int) -> Select:
    return (
        select(
            Trade.created_at.label("at"),
            Trade.id,
            Trade.side,
            Trade.quantity,
            Instrument.symbol,
            Trade.price,
            Trade.status,
            Trade.suitability_flag,
            Trade.suitability_reason,
        )
        .join(Instrument, Instrument.id == Trade.instrument_id)
        .where(Trade.client_id == client_id)
    )
