"""The lending desk on a client's timeline and on staff calendars.

Timeline (loans whose application names the client): each stage change ("LA-000001: approved →
settled", with who moved it) and each repayment (amount, date received). Calendar: the due dates
of instalments of the settled loans a member of staff is BDM of, and the reminder dates of the
notes they wrote. Each source is one query; importing this module registers them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, select

from app.clients.timeline import TimelineEvent, register_timeline_source
from app.extensions import db
from app.lending.models import (
    LoanApplication,
    LoanInstalment,
    LoanNote,
    LoanRepayment,
    LoanStageEvent,
)
from app.security.scoping import UNSCOPED
from app.tasks.calendar import CalendarEvent, register_calendar_source

DUE_TIME = time(9, 0)
"""Calendar entries for a day (a due date, a note's reminder) are placed at 09:00 UTC."""


def _link(application_id: int) -> str:
    return f"/loanapplicationview/show/{application_id}"


def _money(amount) -> str:
    return f"{current_app.config.get('CRM_BASE_CURRENCY', 'INR')} {amount:,.2f}"


def _reference(reference: str | None, application_id: int) -> str:
    return reference or f"application #{application_id}"


# ---- the client's timeline ----------------------------------------------------------------


def _stage_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="loan",
        title=f"{_reference(row.reference, row.application_id)}: "
        + (f"{row.from_stage} → {row.to_stage}" if row.from_stage else f"opened in {row.to_stage}"),
        detail=row.note or None,
        url=_link(row.application_id),
        who=row.actor_name,
    )


@register_timeline_source("loan", "Loans", _stage_event)
def stage_rows(client_id: int) -> Select:
    return (
        select(
            LoanStageEvent.occurred_at.label("at"),
            LoanStageEvent.application_id,
            LoanApplication.reference,
            LoanStageEvent.from_stage,
            LoanStageEvent.to_stage,
            LoanStageEvent.note,
            LoanStageEvent.actor_name,
        )
        .join(LoanApplication, LoanApplication.id == LoanStageEvent.application_id)
        .where(LoanApplication.client_id == client_id)
    )


def _repayment_event(row) -> TimelineEvent:
    """A repayment, at the time it was recorded (the date received is in the detail)."""
    return TimelineEvent(
        at=row.at,
        kind="repayment",
        title=f"Repayment of {_money(row.amount)} on "
        f"{_reference(row.reference, row.application_id)}",
        detail=(
            f"received {row.received_on:%d %b %Y} by {row.method.replace('_', ' ')}; "
            f"interest {_money(row.interest_part)}, principal {_money(row.principal_part)}"
        ),
        url=_link(row.application_id),
        who=row.username,
    )


@register_timeline_source("repayment", "Repayments", _repayment_event)
def repayment_rows(client_id: int) -> Select:
    return (
        select(
            LoanRepayment.created_at.label("at"),
            LoanRepayment.application_id,
            LoanApplication.reference,
            LoanRepayment.amount,
            LoanRepayment.received_on,
            LoanRepayment.method,
            LoanRepayment.interest_part,
            LoanRepayment.principal_part,
            User.username,
        )
        .join(LoanApplication, LoanApplication.id == LoanRepayment.application_id)
        .outerjoin(User, User.id == LoanRepayment.recorded_by_id)
        .where(LoanApplication.client_id == client_id)
    )


# ---- the calendar -------------------------------------------------------------------------


def _days_in(start: datetime, end: datetime) -> tuple[date, date]:
    """The first day and the day after the last whose ``DUE_TIME`` falls in ``[start, end)``."""

    def first_on_or_after(moment: datetime) -> date:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        day = moment.date()
        return day if datetime.combine(day, DUE_TIME, tzinfo=UTC) >= moment else day + timedelta(1)

    return first_on_or_after(start), first_on_or_after(end)


def _at(day: date) -> datetime:
    return datetime.combine(day, DUE_TIME, tzinfo=UTC)


@register_calendar_source
def instalment_events(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Due dates of the instalments of settled loans the user is BDM of."""
    first, after_last = _days_in(start, end)
    rows = db.session.execute(
        select(
            LoanInstalment.id,
            LoanInstalment.application_id,
            LoanApplication.reference,
            LoanInstalment.number,
            LoanInstalment.due_date,
            LoanInstalment.total,
            LoanInstalment.status,
        )
        .join(LoanApplication, LoanApplication.id == LoanInstalment.application_id)
        .where(
            LoanApplication.bdm_id == user_id,
            LoanApplication.stage == "settled",
            LoanInstalment.due_date >= first,
            LoanInstalment.due_date < after_last,
        )
        .order_by(LoanInstalment.due_date, LoanInstalment.id),
        execution_options=UNSCOPED,
    )
    return [
        CalendarEvent(
            title=f"{_reference(reference, application_id)} instalment {number} due: "
            f"{_money(total)}" + (f" ({status})" if status in ("paid", "late") else ""),
            start=_at(due_date),
            end=None,
            url=_link(application_id),
            kind="instalment",
            uid=f"loan-instalment-{instalment_id}@fincrm",
        )
        for instalment_id, application_id, reference, number, due_date, total, status in rows
    ]


@register_calendar_source
def note_reminder_events(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Reminder dates of the loan notes the user wrote."""
    first, after_last = _days_in(start, end)
    rows = db.session.execute(
        select(
            LoanNote.id,
            LoanNote.application_id,
            LoanApplication.reference,
            LoanNote.body,
            LoanNote.remind_on,
        )
        .join(LoanApplication, LoanApplication.id == LoanNote.application_id)
        .where(
            LoanNote.author_id == user_id,
            LoanNote.remind_on >= first,
            LoanNote.remind_on < after_last,
        )
        .order_by(LoanNote.remind_on, LoanNote.id),
        execution_options=UNSCOPED,
    )
    return [
        CalendarEvent(
            title=f"Reminder on {_reference(reference, application_id)}: "
            + ((body or "").strip().splitlines() or [""])[0][:80],
            start=_at(remind_on),
            end=None,
            url=_link(application_id),
            kind="loan_note",
            uid=f"loan-note-{note_id}@fincrm",
        )
        for note_id, application_id, reference, body, remind_on in rows
    ]
