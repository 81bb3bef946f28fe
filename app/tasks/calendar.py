"""The calendar: everything dated for one member of staff, from every desk that registers a source.

A *source* is a function ``(user_id, start, end) -> list[CalendarEvent]`` listing that person's
own dated items in ``[start, end)`` with ONE query (filtered by the date range in the database;
no query per row). It filters by ``user_id`` itself and runs unscoped, because the ICS feed has
nobody signed in. Tasks and lead follow-ups register here; later desks (repayments, renewals)
call ``register_calendar_source`` from their own module.

The private ICS feed is reached with a secret link; only its SHA-256 is stored
(``CalendarFeedToken``), so the link is shown once, when it is made, and replacing or revoking it
makes the old one answer 404.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from icalendar import Calendar, Event
from sqlalchemy import select

from app.core.types import utcnow
from app.extensions import db
from app.leads.models import OPEN_LEAD_STATUSES, Lead
from app.security.scoping import UNSCOPED
from app.tasks.models import CalendarFeedToken, Task

FEED_PAST_DAYS = 30
FEED_FUTURE_DAYS = 365


@dataclass(frozen=True)
class CalendarEvent:
    title: str
    start: datetime
    end: datetime | None
    url: str | None
    kind: str
    uid: str | None = None
    """Stable identifier for calendar clients (the ICS UID); made from kind and url if None."""

    @property
    def ics_uid(self) -> str:
        if self.uid:
            return self.uid
        digest = hashlib.sha1(f"{self.kind}|{self.url}|{self.title}".encode()).hexdigest()[:16]
        return f"{self.kind}-{digest}@fincrm"


CalendarSource = Callable[[int, datetime, datetime], list[CalendarEvent]]
CALENDAR_SOURCES: list[CalendarSource] = []


def register_calendar_source(func: CalendarSource) -> CalendarSource:
    """Add a source to every calendar (month, week, ICS feed); usable as a decorator."""
    if func not in CALENDAR_SOURCES:
        CALENDAR_SOURCES.append(func)
    return func


def events_for(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Every source's events of ``user_id`` in ``[start, end)``, in time order."""
    events = [event for source in CALENDAR_SOURCES for event in source(user_id, start, end)]
    return sorted(events, key=lambda event: (event.start, event.kind, event.title))


# ---- the sources of this desk and the leads desk ---------------------------------------------


@register_calendar_source
def task_events(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Tasks assigned to the user, by due time (cancelled ones left out)."""
    rows = db.session.execute(
        select(Task.id, Task.title, Task.due_at, Task.status)
        .where(
            Task.assignee_id == user_id,
            Task.status != "cancelled",
            Task.due_at >= start,
            Task.due_at < end,
        )
        .order_by(Task.due_at),
        execution_options=UNSCOPED,
    )
    return [
        CalendarEvent(
            title=f"Task: {title}" + (" (done)" if status == "done" else ""),
            start=due_at,
            end=None,
            url=f"/taskview/show/{task_id}",
            kind="task",
            uid=f"task-{task_id}@fincrm",
        )
        for task_id, title, due_at, status in rows
    ]


@register_calendar_source
def follow_up_events(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Next follow-ups of the open leads assigned to the user."""
    rows = db.session.execute(
        select(Lead.id, Lead.first_name, Lead.last_name, Lead.next_follow_up_at)
        .where(
            Lead.assigned_agent_id == user_id,
            Lead.status.in_(OPEN_LEAD_STATUSES),
            Lead.next_follow_up_at >= start,
            Lead.next_follow_up_at < end,
        )
        .order_by(Lead.next_follow_up_at),
        execution_options=UNSCOPED,
    )
    return [
        CalendarEvent(
            title=f"Follow up: {first_name} {last_name}",
            start=follow_up_at,
            end=None,
            url=f"/leadview/show/{lead_id}",
            kind="follow_up",
            uid=f"lead-follow-up-{lead_id}@fincrm",
        )
        for lead_id, first_name, last_name, follow_up_at in rows
    ]


# ---- the private feed -----------------------------------------------------------------------


def hash_feed_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def feed_token_of(user_id: int) -> CalendarFeedToken | None:
    return db.session.scalar(select(CalendarFeedToken).where(CalendarFeedToken.user_id == user_id))


def issue_feed_token(user_id: int) -> str:
    """A new secret for ``user_id``'s feed, replacing any earlier one; returns the secret, which
    is not kept anywhere (the caller shows it once and commits)."""
    secret = secrets.token_urlsafe(32)
    row = feed_token_of(user_id)
    if row is None:
        row = CalendarFeedToken(user_id=user_id)
        db.session.add(row)
    row.token_hash = hash_feed_token(secret)
    row.created_at = utcnow()
    row.revoked_at = None
    db.session.flush()
    return secret


def revoke_feed_token(user_id: int) -> bool:
    """Stop ``user_id``'s feed link from working; False when there was no live link."""
    row = feed_token_of(user_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    db.session.flush()
    return True


def user_for_feed_token(secret: str) -> int | None:
    """The user whose live feed link this is, or None (unknown, replaced or revoked)."""
    if not secret or len(secret) > 200:
        return None
    return db.session.scalar(
        select(CalendarFeedToken.user_id).where(
            CalendarFeedToken.token_hash == hash_feed_token(secret),
            CalendarFeedToken.revoked_at.is_(None),
        ),
        execution_options=UNSCOPED,
    )


def build_ics(user_id: int, now: datetime | None = None) -> bytes:
    """The user's calendar as iCalendar: 30 days back to a year ahead."""
    now = (now or utcnow()).astimezone(UTC)
    events = events_for(
        user_id, now - timedelta(days=FEED_PAST_DAYS), now + timedelta(days=FEED_FUTURE_DAYS)
    )
    base_url = current_app.config.get("CRM_BASE_URL", "").rstrip("/")
    calendar = Calendar()
    calendar.add("prodid", "-//FinCRM//Calendar feed//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "FinCRM")
    for item in events:
        event = Event()
        event.add("uid", item.ics_uid)
        event.add("dtstamp", now)
        event.add("dtstart", item.start.astimezone(UTC))
        if item.end is not None:
            event.add("dtend", item.end.astimezone(UTC))
        event.add("summary", item.title)
        if item.url:
            event.add("url", base_url + item.url if item.url.startswith("/") else item.url)
        event.add("categories", [item.kind])
        calendar.add_component(event)
    return calendar.to_ical()
