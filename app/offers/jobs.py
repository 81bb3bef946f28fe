"""The offers desk's daily job: every active offer that is due today goes to the clients it
picks and has not reached yet, in batches of ``CRM_OFFER_BATCH`` clients (each batch one
transaction), so a large audience is never loaded at once and a second run sends nothing."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select

from app.core.types import utcnow
from app.extensions import db
from app.offers.models import Offer
from app.offers.services import is_due, send_until_done

log = logging.getLogger(__name__)


def send_offers(today: date | None = None) -> dict[str, int]:
    """Send today's offers; returns how many clients each offer reached (by offer name)."""
    today = today or utcnow().date()
    offers = list(
        db.session.scalars(select(Offer).where(Offer.active.is_(True)).order_by(Offer.id))
    )
    sent: dict[str, int] = {}
    for offer in offers:
        if not is_due(offer, today):
            continue
        sent[offer.name] = send_until_done(offer, today)
        if sent[offer.name]:
            log.info("offers: %s sent to %d client(s)", offer.name, sent[offer.name])
    return sent
