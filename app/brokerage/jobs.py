"""The brokerage desk's periodic job: refresh instrument prices from the configured feed."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from sqlalchemy import select

from app.brokerage.models import Instrument
from app.brokerage.prices import CsvPriceFeed, PriceFeedError, apply_prices, configured_feed
from app.extensions import db
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)


def refresh_prices(today: date | None = None) -> dict[str, int | str]:
    """Fetch quotes for the active instruments and apply them; commits. A missing price file or
    an unusable answer is logged and the run ends cleanly with nothing applied."""
    feed = configured_feed()
    if isinstance(feed, CsvPriceFeed) and not (str(feed.path) and Path(feed.path).is_file()):
        log.warning("price refresh: no price file at %r (CRM_PRICE_FEED_FILE)", str(feed.path))
        return {"applied": 0, "status": "no price file"}
    symbols = list(
        db.session.scalars(
            select(Instrument.symbol).where(Instrument.active.is_(True)),
            execution_options=UNSCOPED,
        )
    )
    try:
        quotes = feed.fetch(symbols)
    except PriceFeedError as exc:
        log.warning("price refresh refused the feed's answer: %s", exc)
        return {"applied": 0, "status": "refused", "problems": len(exc.problems)}
    result = apply_prices(quotes, feed.source)
    db.session.commit()
    log.info("price refresh: %d prices applied", result.applied)
    return {"applied": result.applied, "status": "ok", "unknown": len(result.unknown)}
