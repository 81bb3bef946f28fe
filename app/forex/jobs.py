"""The periodic rate refresh: reads the configured feed (``CRM_FX_RATES_URL`` if set, else the
file ``CRM_FX_RATES_FILE``) and adds the rates it has not seen; commits. A bad feed changes
nothing and is reported in the job's result."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flask import current_app

from app.core.errors import DomainError
from app.extensions import db
from app.forex.rates import CsvRateFeed, HttpRateFeed, RateFeed, load_rates


def configured_feed() -> RateFeed | None:
    url = current_app.config.get("CRM_FX_RATES_URL")
    if url:
        return HttpRateFeed(url)
    path = current_app.config.get("CRM_FX_RATES_FILE")
    return CsvRateFeed(path) if path and Path(path).is_file() else None


def refresh_rates(today: date | None = None) -> dict[str, object]:
    feed = configured_feed()
    if feed is None:
        return {"added": 0, "feed": None}
    try:
        added = load_rates(feed)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        current_app.logger.warning("fx-rates: %s: %s", feed.name, exc)
        return {"added": 0, "feed": feed.name, "error": str(exc)}
    return {"added": len(added), "feed": feed.name}
