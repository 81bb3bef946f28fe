"""Offers: checking an offer before it is saved, choosing its audience, and sending it.

The audience of an offer is ONE set-based query over clients: active (not inactive, not
suspended), in the offer's segments and risk profiles, matching its activity rule, reachable on
its channel and allowing it in their communication preferences, and without a delivery of this
offer yet. ``send_offer`` claims a batch of them by inserting their ``OfferDelivery`` rows with
``ON CONFLICT DO NOTHING`` (the database's unique offer/client pair is the at-most-once
guarantee: a run racing this one inserts nothing for the same clients), then queues one
notification per claimed client through the outbox, all in one transaction.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Integer, and_, exists, func, literal, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.clients.models import RISK_PROFILES, SEGMENTS, Client
from app.comms.models import NotificationPreference
from app.comms.services import notify
from app.core.audit import record_event
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import UTCDateTime, utcnow
from app.core.validators import clean_text, parse_choice, parse_date, parse_int
from app.extensions import db
from app.offers.activity import any_activity_since
from app.offers.models import ACTIVITY_RULES, OFFER_CHANNELS, PLACEHOLDERS, Offer, OfferDelivery
from app.security.scoping import UNSCOPED, acting_as_system

AUDIENCE_PREVIEW_CAP = 1000
"""The audience preview counts up to this many clients ("at least 1,000" beyond)."""
MAX_ACTIVITY_DAYS = 3650
MAX_LEAD_DAYS = 365


# ---- the festival and holiday calendar ---------------------------------------------------


def festival_calendar() -> dict[str, date]:
    """``CRM_FESTIVALS`` as name -> date; a date that is not ``YYYY-MM-DD`` is a setup error."""
    calendar = current_app.config.get("CRM_FESTIVALS") or {}
    return {name: date.fromisoformat(str(day)) for name, day in calendar.items()}


# ---- the message --------------------------------------------------------------------------


def placeholders_in(text: str, field: str) -> set[str]:
    """The names ``text`` uses in braces; refuses any other than ``PLACEHOLDERS`` (and formats,
    attributes or indexes on them), and unbalanced braces. ``{{`` and ``}}`` are literal braces."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise FieldError(
            f"has an unmatched brace ({exc}); write {{{{ or }}}} for a literal brace.", field
        ) from exc
    names = set()
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise FieldError(f"uses an unknown placeholder {shown}; allowed: {allowed}.", field)
        names.add(name)
    return names


def render(text: str, client_name: str, client_type: str = "individual") -> str:
    """``text`` with each placeholder replaced by the client's value (checked text only: the
    values are pasted in, never formatted, so a client's name cannot inject anything)."""
    first_name = client_name.split()[0] if client_type == "individual" and client_name else ""
    values = {"first_name": first_name or client_name, "name": client_name}
    out = []
    for text_part, name, _, _ in string.Formatter().parse(text):
        out.append(text_part)
        if name is not None:
            out.append(values[name])
    return "".join(out)


# ---- saving an offer ----------------------------------------------------------------------


def _subset(value: Any, field: str, choices: tuple[str, ...]) -> str | None:
    """A comma-separated subset of ``choices`` (a list is accepted too), in their order."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    picked = set()
    for item in items:
        if not isinstance(item, str):
            raise FieldError(f"must list values among: {', '.join(choices)}.", field)
        item = item.strip().lower()
        if not item:
            continue
        if item not in choices:
            raise FieldError(f"{item!r} is not one of: {', '.join(choices)}.", field)
        picked.add(item)
    return ",".join(c for c in choices if c in picked) or None


def prepare_offer(offer: Offer) -> Offer:
    """Clean and check an offer before it is saved (screens and API alike); FieldError names
    the first field at fault and nothing is written."""
    offer.name = clean_text(offer.name, "name", 100, required=True)
    with db.session.no_autoflush:
        clash = db.session.scalar(
            select(Offer.id).where(Offer.name == offer.name, Offer.id != (offer.id or 0))
        )
    if clash:
        raise ConflictError("another offer already has this name.", "name")
    offer.subject = clean_text(offer.subject, "subject", 200, required=True)
    offer.body = clean_text(offer.body, "body", 5000, required=True)
    placeholders_in(offer.subject, "subject")
    placeholders_in(offer.body, "body")
    offer.channel = parse_choice(offer.channel or "email", "channel", OFFER_CHANNELS)
    offer.segments = _subset(offer.segments, "segments", SEGMENTS)
    offer.risk_profiles = _subset(offer.risk_profiles, "risk_profiles", RISK_PROFILES)
    offer.activity = parse_choice(offer.activity or "any", "activity", ACTIVITY_RULES)
    if offer.activity == "any":
        days = parse_int(offer.activity_days, "activity_days", 0, MAX_ACTIVITY_DAYS, False)
        if days:
            raise FieldError(
                "only applies when the activity rule is active or inactive.", "activity_days"
            )
        offer.activity_days = None
    else:
        offer.activity_days = parse_int(offer.activity_days, "activity_days", 1, MAX_ACTIVITY_DAYS)
    occasion = clean_text(offer.occasion, "occasion", 100)
    if occasion is not None:
        known = festival_calendar()
        if occasion not in known:
            listed = ", ".join(sorted(known)) or "none (set CRM_FESTIVALS)"
            raise FieldError(
                f"{occasion!r} is not in the festival calendar; known occasions: {listed}.",
                "occasion",
            )
    offer.occasion = occasion
    lead_days = offer.lead_days if offer.lead_days not in (None, "") else 0
    offer.lead_days = parse_int(lead_days, "lead_days", 0, MAX_LEAD_DAYS)
    if offer.lead_days and occasion is None:
        raise FieldError("only applies to an offer for an occasion.", "lead_days")
    offer.starts_on = parse_date(offer.starts_on, "starts_on")
    offer.ends_on = parse_date(offer.ends_on, "ends_on")
    if offer.starts_on and offer.ends_on and offer.ends_on < offer.starts_on:
        raise FieldError("cannot be before the start date.", "ends_on")
    if offer.active is None:
        offer.active = True
    if offer.created_by_id is None and offer.created_by is None:
        offer.created_by_id = _signed_in_user_id()
    return offer


def refuse_delete_when_sent(offer: Offer) -> None:
    """An offer that reached clients stays (its deliveries are the record); switch it off."""
    sent = db.session.scalar(
        select(func.count()).where(OfferDelivery.offer_id == offer.id),
        execution_options=UNSCOPED,
    )
    if sent:
        raise ConflictError(
            f"the offer was sent to {sent:,} client(s) and is kept as their record; "
            "switch it off (untick Active) instead of deleting it."
        )


def _signed_in_user_id() -> int | None:
    from app.security.scoping import current_actor

    actor = current_actor()
    return actor.user_id if actor else None


# ---- when an offer goes out ---------------------------------------------------------------


def sending_window(offer: Offer) -> tuple[date | None, date | None]:
    """The first and last day the offer may go out (None: open-ended): its own window,
    narrowed to ``lead_days`` before its occasion up to the occasion's day."""
    first, last = offer.starts_on, offer.ends_on
    if offer.occasion:
        day = festival_calendar().get(offer.occasion)
        if day is None:  # the occasion left the calendar: nothing to send for
            return date.max, date.min
        opens = day - timedelta(days=offer.lead_days or 0)
        first = max(first, opens) if first else opens
        last = min(last, day) if last else day
    return first, last


def is_due(offer: Offer, today: date) -> bool:
    first, last = sending_window(offer)
    return offer.active and (first is None or first <= today) and (last is None or today <= last)


# ---- the audience -------------------------------------------------------------------------


def _reachable(channel: str):
    """The client has an address on the channel and their preferences allow it (no preference
    row: e-mail yes, SMS no, as ``app.comms.services.preferences_for`` decides)."""
    prefs = NotificationPreference
    if channel == "email":
        return and_(
            Client.email.is_not(None),
            Client.email != "",
            not_(exists().where(prefs.client_id == Client.id, prefs.email_enabled.is_(False))),
        )
    return and_(
        Client.phone.is_not(None),
        Client.phone != "",
        exists().where(prefs.client_id == Client.id, prefs.sms_enabled.is_(True)),
    )


def audience_filter(offer: Offer, today: date):
    """The WHERE clause of the clients the offer would reach today (ignoring its window)."""
    clauses = [Client.status == "active", _reachable(offer.channel)]
    if offer.segment_list():
        clauses.append(Client.segment.in_(offer.segment_list()))
    if offer.risk_profile_list():
        clauses.append(Client.risk_profile.in_(offer.risk_profile_list()))
    if offer.activity != "any":
        since = datetime.combine(today - timedelta(days=offer.activity_days or 0), time(), UTC)
        active = any_activity_since(Client.id, since)
        clauses.append(active if offer.activity == "active" else not_(active))
    if offer.id is not None:
        clauses.append(
            not_(
                exists().where(
                    OfferDelivery.offer_id == offer.id, OfferDelivery.client_id == Client.id
                )
            )
        )
    return and_(*clauses)


def preview_audience(offer: Offer, today: date | None = None) -> tuple[int, bool]:
    """How many clients would receive the offer now, counted up to ``AUDIENCE_PREVIEW_CAP``;
    the flag says the cap was reached (so "at least" that many)."""
    today = today or utcnow().date()
    capped = (
        select(Client.id)
        .where(audience_filter(offer, today))
        .limit(AUDIENCE_PREVIEW_CAP)
        .subquery()
    )
    count = db.session.scalar(select(func.count()).select_from(capped), execution_options=UNSCOPED)
    return count, count >= AUDIENCE_PREVIEW_CAP


def describe_audience(offer: Offer, today: date | None = None) -> str:
    count, capped = preview_audience(offer, today)
    if capped:
        return f"at least {count:,} clients"
    return f"{count:,} client{'s' if count != 1 else ''}"


# ---- sending ------------------------------------------------------------------------------


@dataclass
class OfferRun:
    offer_id: int
    sent: int = 0


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(OfferDelivery)


def send_offer(offer: Offer, today: date, batch: int | None = None) -> int:
    """Send ``offer`` to up to ``batch`` clients who should get it and have not (the caller
    commits). Returns how many were sent; 0 when the offer is not due today."""
    if not is_due(offer, today):
        return 0
    batch = batch or int(current_app.config.get("CRM_OFFER_BATCH", 1000))
    now = utcnow()
    audience = (
        select(literal(offer.id, Integer), Client.id, literal(now, UTCDateTime()))
        .where(audience_filter(offer, today))
        .order_by(Client.id)
        .limit(batch)
    )
    claimed = db.session.execute(
        _insert()
        .from_select(["offer_id", "client_id", "sent_at"], audience)
        .on_conflict_do_nothing(index_elements=["offer_id", "client_id"])
        .returning(OfferDelivery.id, OfferDelivery.client_id),
        execution_options=UNSCOPED,
    ).all()
    if not claimed:
        return 0
    clients = {
        row.id: row
        for row in db.session.execute(
            select(Client.id, Client.name, Client.client_type).where(
                Client.id.in_([client_id for _, client_id in claimed])
            ),
            execution_options=UNSCOPED,
        )
    }
    links = []
    for delivery_id, client_id in claimed:
        client = clients[client_id]
        rows = notify(
            "offer",
            f"offer:{offer.id}:{client_id}",
            render(offer.subject, client.name, client.client_type),
            render(offer.body, client.name, client.client_type),
            client_id=client_id,
            related=offer,
            channels=(offer.channel,),
        )
        if rows:
            links.append((delivery_id, rows[0]))
    if links:
        db.session.flush()
        db.session.execute(
            update(OfferDelivery),
            [{"id": delivery_id, "notification_id": row.id} for delivery_id, row in links],
            execution_options=UNSCOPED,
        )
    return len(claimed)


def get_offer(offer_id: Any) -> Offer:
    offer = db.session.get(Offer, offer_id) if str(offer_id).isdigit() else None
    if offer is None:
        raise NotFound("no such offer.")
    return offer


def run_offer_now(offer_id: Any, today: date | None = None) -> int:
    """Send one offer now (a manager's "run"), batch after batch until its audience is covered
    (commits each batch). Refused with a clear message when the offer is not due today."""
    offer = get_offer(offer_id)
    today = today or utcnow().date()
    if not offer.active:
        raise FieldError("the offer is switched off; activate it first.", "active")
    if not is_due(offer, today):
        first, last = sending_window(offer)
        raise FieldError(
            f"the offer is not due today ({today}); it goes out from {first or 'any day'} to "
            f"{last or 'any day'}.",
            "starts_on" if not offer.occasion else "occasion",
        )
    with acting_as_system():  # a company-wide offer reaches clients of every branch
        sent = send_until_done(offer, today)
    record_event("update", offer, f"sent now to {sent} client(s)")  # as the person who ran it
    return sent


def send_until_done(offer: Offer, today: date, max_batches: int | None = None) -> int:
    sent, batches = 0, 0
    while max_batches is None or batches < max_batches:
        batch = int(current_app.config.get("CRM_OFFER_BATCH", 1000))
        count = send_offer(offer, today, batch)
        db.session.commit()
        sent += count
        batches += 1
        if count < batch:
            break
    return sent
