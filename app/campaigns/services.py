"""Campaigns: checking a campaign, its workflow (draft -> scheduled -> sending -> sent, or
cancelled), sending it in batches through the outbox, and its statistics.

Sending claims a batch of the segment's people by inserting their ``CampaignRecipient`` rows
(``ON CONFLICT DO NOTHING``: the database's unique campaign/person pairs are the at-most-once
guarantee, so a run racing this one, or a re-run after a crash, claims nobody twice), and
queues the claimed people's messages through ``notify_many`` (whose idempotency keys are a
second guard) in the same transaction. Someone without marketing consent, who unsubscribed,
whose preferences refuse the channel or who has no address on it is recorded as skipped, with
the reason, and hears nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.campaigns.models import (
    CAMPAIGN_CHANNELS,
    Campaign,
    CampaignRecipient,
    CampaignSegment,
)
from app.campaigns.segments import MODELS, get_segment, segment_where
from app.campaigns.unsubscribe import unsubscribe_url
from app.comms.models import NotificationPreference
from app.comms.services import Message, Preferences, notify_many
from app.core.audit import record_event
from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.validators import clean_text, parse_choice
from app.extensions import db
from app.offers.services import placeholders_in, render
from app.security.scoping import UNSCOPED, current_actor

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{1,39}")
EDITABLE = ("draft",)
CANCELLABLE = ("draft", "scheduled", "sending")


# ---- saving a campaign ----------------------------------------------------------------------


def _code_from(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "campaign"


def prepare_campaign(campaign: Campaign) -> Campaign:
    """Clean and check a campaign before it is saved (screens and API alike); only a draft can
    change. FieldError names the first field at fault and nothing is written."""
    if campaign.id is not None:
        with db.session.no_autoflush:
            saved_status = db.session.scalar(
                select(Campaign.status).where(Campaign.id == campaign.id),
                execution_options=UNSCOPED,
            )
        if saved_status not in EDITABLE:
            raise ConflictError(f"a {saved_status} campaign can no longer be changed.", "status")
    campaign.status = "draft" if campaign.id is None else campaign.status
    campaign.name = clean_text(campaign.name, "name", 100, required=True)
    code = clean_text(campaign.code, "code", 40) or _code_from(campaign.name)
    code = code.lower()
    if not CODE.fullmatch(code):
        raise FieldError(
            "must be 2-40 lower-case letters, digits, - or _ (it goes into links as utm_campaign).",
            "code",
        )
    campaign.code = code
    with db.session.no_autoflush:
        for field, value in (("name", campaign.name), ("code", campaign.code)):
            clash = db.session.scalar(
                select(Campaign.id).where(
                    getattr(Campaign, field) == value, Campaign.id != (campaign.id or 0)
                ),
                execution_options=UNSCOPED,
            )
            if clash:
                raise ConflictError(f"another campaign already has this {field}.", field)
        segment = _segment_of(campaign)
    campaign.segment_id = segment.id
    campaign.branch_id = segment.branch_id
    campaign.channel = parse_choice(campaign.channel or "email", "channel", CAMPAIGN_CHANNELS)
    campaign.subject = clean_text(campaign.subject, "subject", 200, required=True)
    campaign.body = clean_text(campaign.body, "body", 5000, required=True)
    placeholders_in(campaign.subject, "subject")
    placeholders_in(campaign.body, "body")
    actor = current_actor()
    if campaign.created_by_id is None and actor is not None:
        campaign.created_by_id = actor.user_id
    return campaign


def _segment_of(campaign: Campaign) -> CampaignSegment:
    """The campaign's segment, which the signed-in user must be able to see."""
    segment_id = campaign.segment.id if campaign.segment is not None else campaign.segment_id
    if segment_id in (None, ""):
        raise FieldError("is required.", "segment")
    try:
        return get_segment(segment_id)
    except NotFound as exc:
        raise FieldError(f"no segment {segment_id}.", "segment") from exc


def get_campaign(campaign_id: Any) -> Campaign:
    campaign = (
        db.session.get(Campaign, int(campaign_id))
        if str(campaign_id).isdigit() and int(campaign_id) < 2**31
        else None
    )
    if campaign is None:
        raise NotFound("no such campaign.")
    return campaign


def refuse_delete_unless_draft(campaign: Campaign) -> None:
    if campaign.status != "draft":
        raise ConflictError(
            f"a {campaign.status} campaign is kept as the record of what was sent; "
            "cancel it instead of deleting it."
        )


# ---- the workflow ---------------------------------------------------------------------------


def schedule_campaign(campaign: Campaign, when: datetime | None = None) -> Campaign:
    """A draft goes out at ``when`` (UTC; now when not given). The caller commits, then
    ``start_if_due`` hands a due campaign to the worker."""
    if campaign.status != "draft":
        raise ConflictError(f"only a draft can be scheduled; this campaign is {campaign.status}.")
    if when is not None and when.tzinfo is None:
        raise FieldError("needs a time zone (the API reads ISO 8601 in UTC).", "scheduled_at")
    campaign.status = "scheduled"
    campaign.scheduled_at = when or utcnow()
    record_event("update", campaign, f"scheduled for {campaign.scheduled_at:%Y-%m-%d %H:%M} UTC")
    return campaign


def cancel_campaign(campaign: Campaign) -> Campaign:
    """Stop a campaign: a draft or scheduled one sends nothing; one sending stops after the
    batch in hand (what went out stays on record). The caller commits."""
    if campaign.status not in CANCELLABLE:
        raise ConflictError(f"a {campaign.status} campaign cannot be cancelled.")
    campaign.status = "cancelled"
    campaign.finished_at = utcnow()
    record_event(
        "update",
        campaign,
        f"cancelled after {campaign.sent_count} sent, {campaign.skipped_count} skipped",
    )
    return campaign


def start_if_due(campaign: Campaign) -> None:
    """After the commit of a schedule: a campaign due now goes to the worker at once (the
    ``campaigns-due`` sweep picks later ones, and any this missed)."""
    if campaign.status == "scheduled" and campaign.scheduled_at <= utcnow():
        from app.core.jobs import enqueue

        try:
            enqueue("app.campaigns.jobs.send_campaign", campaign.id, retries=3)
        except Exception as exc:  # Redis down: the sweep sends it on its next run
            current_app.logger.warning("campaign %s waits for the sweep (%s)", campaign.id, exc)


# ---- sending --------------------------------------------------------------------------------


@dataclass
class BatchResult:
    seen: int = 0
    """People of the segment read for the batch (fewer than the batch: the segment is covered)."""
    sent: int = 0
    skipped: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.skipped


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(CampaignRecipient)


def _candidates(campaign: Campaign, segment: CampaignSegment, batch: int) -> list[Any]:
    """The next ``batch`` people of the segment the campaign has not handled yet."""
    model = MODELS[segment.audience]
    key = (
        CampaignRecipient.client_id if segment.audience == "clients" else CampaignRecipient.lead_id
    )
    done = select(key).where(CampaignRecipient.campaign_id == campaign.id, key.is_not(None))
    columns = [
        model.id,
        model.email,
        model.phone,
        model.marketing_consent,
        model.marketing_opt_out_at,
    ]
    if segment.audience == "clients":
        columns += [model.name, model.client_type]
    else:
        columns += [model.first_name, model.last_name]
    return db.session.execute(
        select(*columns)
        .where(segment_where(segment), model.id.not_in(done))
        .order_by(model.id)
        .limit(batch),
        execution_options=UNSCOPED,
    ).all()


def _preferences(client_ids: list[int]) -> dict[int, Preferences]:
    """The clients' channel preferences, as ``preferences_for`` reads them, in one query."""
    if not client_ids:
        return {}
    rows = db.session.scalars(
        select(NotificationPreference).where(NotificationPreference.client_id.in_(client_ids)),
        execution_options=UNSCOPED,
    )
    return {
        row.client_id: Preferences(row.email_enabled, row.sms_enabled, False, row.digest)
        for row in rows
    }


def _skip_reason(person: Any, channel: str, prefs: Preferences | None) -> str | None:
    if not person.marketing_consent:
        return "opted_out" if person.marketing_opt_out_at is not None else "no_consent"
    if prefs is not None and not prefs.allows(channel):
        return "preferences"
    if not (person.email if channel == "email" else person.phone):
        return "no_address"
    return None


def send_batch(campaign: Campaign, batch: int | None = None) -> BatchResult:
    """Handle the next ``batch`` people of the campaign's segment (the caller commits)."""
    batch = batch or int(current_app.config.get("CRM_CAMPAIGN_BATCH", 500))
    segment = db.session.get(CampaignSegment, campaign.segment_id, execution_options=UNSCOPED)
    clients = segment.audience == "clients"
    people = _candidates(campaign, segment, batch)
    if not people:
        return BatchResult()
    prefs = _preferences([p.id for p in people]) if clients else {}
    now = utcnow()
    decided = {}
    for person in people:
        default = Preferences(in_app=False) if clients else None
        reason = _skip_reason(person, campaign.channel, prefs.get(person.id, default))
        decided[person.id] = (person, reason)
    key = "client_id" if clients else "lead_id"
    claimed = db.session.execute(
        _insert()
        .values(
            [
                {
                    "campaign_id": campaign.id,
                    key: person_id,
                    "status": "skipped" if reason else "sent",
                    "reason": reason,
                    "created_at": now,
                }
                for person_id, (_, reason) in decided.items()
            ]
        )
        .on_conflict_do_nothing()
        .returning(getattr(CampaignRecipient, key)),
        execution_options=UNSCOPED,
    ).scalars()
    result = BatchResult(seen=len(people))
    messages = []
    for person_id in claimed:
        person, reason = decided[person_id]
        if reason:
            result.skipped += 1
            continue
        result.sent += 1
        messages.append(_message(campaign, person, clients))
    notify_many(messages)
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            sent_count=Campaign.sent_count + result.sent,
            skipped_count=Campaign.skipped_count + result.skipped,
        ),
        execution_options=UNSCOPED,
    )
    # Whoever another run claimed meanwhile is that run's to send: counted there, not here.
    return result


def _message(campaign: Campaign, person: Any, clients: bool) -> Message:
    if clients:
        name, kind = person.name, person.client_type
    else:
        name, kind = f"{person.first_name} {person.last_name}", "individual"
    tag = "c" if clients else "l"
    url = unsubscribe_url(campaign.id, "client" if clients else "lead", person.id)
    body = render(campaign.body, name, kind)
    if campaign.channel == "sms":
        body = f"{body}\nStop: {url}"  # a text message carries its opt-out in the text
    return Message(
        kind="campaign",
        key=f"campaign:{campaign.id}:{tag}{person.id}",
        subject=render(campaign.subject, name, kind),
        body=body,
        address=person.email if campaign.channel == "email" else person.phone,
        related_type="campaign",
        related_id=campaign.id,
        channels=(campaign.channel,),
        recipient_client_id=person.id if clients else None,
        unsubscribe_url=url,
    )


def run_campaign(campaign_id: int, max_batches: int | None = None) -> dict[str, int | str]:
    """Send a due campaign batch after batch (each batch committed) until its segment is
    covered, it is cancelled, or ``max_batches``; then mark it sent. A campaign already
    ``sending`` (a run that died) carries on where the record of its recipients stops."""
    campaign = db.session.get(
        Campaign, campaign_id, populate_existing=True, execution_options=UNSCOPED
    )
    if campaign is None:
        return {"status": "missing"}
    if campaign.status == "scheduled" and campaign.scheduled_at <= utcnow():
        campaign.status, campaign.started_at = "sending", utcnow()
        db.session.commit()
        record_event("update", campaign, "sending started")
    if campaign.status != "sending":
        return {"status": campaign.status, "sent": campaign.sent_count}
    batches = 0
    batch = int(current_app.config.get("CRM_CAMPAIGN_BATCH", 500))
    while max_batches is None or batches < max_batches:
        # Lock the campaign's row for the batch: a cancel waits for it, then wins.
        locked = select(Campaign).where(Campaign.id == campaign_id)
        if db.session.get_bind().dialect.name == "postgresql":
            locked = locked.with_for_update()
        campaign = db.session.scalars(
            locked.execution_options(populate_existing=True, **UNSCOPED)
        ).one()
        if campaign.status != "sending":
            db.session.commit()
            break
        result = send_batch(campaign, batch)
        db.session.commit()
        batches += 1
        if result.seen < batch:
            campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
            if campaign.status == "sending":
                campaign.status, campaign.finished_at = "sent", utcnow()
                db.session.commit()
                record_event(
                    "update",
                    campaign,
                    f"sent: {campaign.sent_count} sent, {campaign.skipped_count} skipped",
                )
            break
    db.session.refresh(campaign)
    return {
        "status": campaign.status,
        "sent": campaign.sent_count,
        "skipped": campaign.skipped_count,
    }


def due_campaigns() -> list[int]:
    """Scheduled campaigns whose time has come, and any left ``sending`` by a run that died."""
    return list(
        db.session.scalars(
            select(Campaign.id)
            .where(
                ((Campaign.status == "scheduled") & (Campaign.scheduled_at <= utcnow()))
                | (Campaign.status == "sending")
            )
            .order_by(Campaign.id),
            execution_options=UNSCOPED,
        )
    )


# ---- statistics -----------------------------------------------------------------------------


def campaign_stats(campaign: Campaign) -> dict[str, Any]:
    """What the campaign page and API show: counts kept by the send, skips by reason (one
    grouped statement), and the leads it brought in (from the attribution summary)."""
    from app.campaigns.summary import CampaignLeadSummary

    reasons = dict(
        db.session.execute(
            select(CampaignRecipient.reason, func.count())
            .where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.status == "skipped",
            )
            .group_by(CampaignRecipient.reason),
            execution_options=UNSCOPED,
        ).all()
    )
    s = CampaignLeadSummary
    leads, converted = db.session.execute(
        select(
            func.coalesce(func.sum(s.n_leads), 0), func.coalesce(func.sum(s.n_converted), 0)
        ).where(s.campaign_id == campaign.id, s.grain == "m")
    ).one()
    return {
        "status": campaign.status,
        "sent": campaign.sent_count,
        "skipped": campaign.skipped_count,
        "skipped_by_reason": {k: int(v) for k, v in sorted(reasons.items())},
        "leads": int(leads),
        "converted": int(converted),
    }
