"""The lending desk's daily jobs: arrears and reminders (dates are UTC days).

``update_arrears`` marks unpaid past-due instalments of settled loans ``late`` and keeps each
loan's days past due and arrears bucket current, writing a ``LoanArrearsChange`` row for every
bucket change. It is three set-based statements (mark, record the bucket changes, write the loans
that changed), whatever the size of the book, so a second run on the same day changes nothing.

``send_loan_reminders`` queues, through the outbox (``app.comms.services.notify``):

- **due soon** (``loan_due_soon``): an unpaid instalment due in 1 to ``CRM_LOAN_DUE_REMINDER_DAYS``
  days, to each borrower with an e-mail address and to the BDM, once per instalment;
- **late, to the borrowers** (``loan_late_borrower``): an unpaid instalment
  ``CRM_LOAN_LATE_BORROWER_DAYS`` (3 and 7) days after its due date, once per instalment and stage;
- **late, to the BDM** (``loan_late_bdm``): the same at ``CRM_LOAN_LATE_BDM_DAYS`` (10);
- **stale stage** (``loan_stale_stage``): an application in an open stage (before settlement)
  that has not moved for ``CRM_LOAN_STALE_STAGE_DAYS`` days, to the BDM, once per stay in a stage
  (the key names the stage and when the application entered it, so a new stay notifies again);
- **note reminders** (``loan_note_reminder``): a note whose reminder date has come, to its author
  and the BDM (one message each when they are the same person); the note is marked reminded.

Each event has an idempotency key, so running the job any number of times sends each once.

Catch-up (a job that was down for some days does not flood anyone):

- a due-soon reminder is sent on the first run in the reminder window, and never once the due
  date has come (the late reminders take over);
- a late stage is sent on the first run from its day up to ``CATCH_UP_DAYS`` days after it;
  when a run finds an instalment past several stages, only the latest is sent (a borrower whose
  reminders were missed on days 3 to 7 hears once, on day 7's stage), and a stage more than
  ``CATCH_UP_DAYS`` days old is skipped for good;
- a stale-stage notice is sent on the first run from the day the stay reaches
  ``CRM_LOAN_STALE_STAGE_DAYS`` days up to ``CATCH_UP_DAYS`` days after that;
- a note reminder is sent on the first run from its date up to ``CATCH_UP_DAYS`` days after it;
  an older one is left unsent (and not marked reminded).

Each rule finds its candidates with one query; events that already have an outbox row are
skipped with one query per 500 keys, and the new outbox rows are written in bulk
(``notify_many``: a few queries and one insert per 1,000 events), so a daily run costs a few
queries however many reminders it sends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.comms.services import already_notified
from app.core.types import utcnow
from app.extensions import db
from app.lending.models import (
    OPEN_STAGES,
    LoanApplication,
    LoanArrearsChange,
    LoanInstalment,
    LoanNote,
    LoanParty,
)
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)

CATCH_UP_DAYS = 3
"""How many days after its day a missed late stage, stale notice or note reminder is still sent."""

KINDS = (
    "loan_due_soon",
    "loan_late_borrower",
    "loan_late_bdm",
    "loan_stale_stage",
    "loan_note_reminder",
)


def application_link(application_id: int) -> str:
    return f"/loanapplicationview/show/{application_id}"


def _unpaid():
    """An instalment not paid in full (by its status and by its amounts)."""
    return and_(
        LoanInstalment.status != "paid",
        LoanInstalment.paid_principal + LoanInstalment.paid_interest < LoanInstalment.total,
    )


# ---- arrears ----------------------------------------------------------------------------------


def bucket_for(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


ARREARS_LOCK = 0x41525245
"""PostgreSQL advisory lock key of the arrears job: two runs at once take turns."""


def _days_since(today: date, earlier):
    """Whole days from ``earlier`` (a date column or expression) to ``today``, in SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(literal(today, Date) - earlier, Integer)
    return cast(func.julianday(literal(today.isoformat())) - func.julianday(earlier), Integer)


def _bucket_sql(days):
    """``bucket_for`` in SQL."""
    return case(
        (days <= 0, "current"),
        (days <= 30, "1-30"),
        (days <= 60, "31-60"),
        (days <= 90, "61-90"),
        else_="90+",
    )


def update_arrears(today: date | None = None) -> dict[str, int]:
    """Bring every settled loan's arrears up to ``today``; commits. A loan's days past due count
    from the due date of its oldest instalment that is past due and not paid in full.

    Set-based, one statement per rule: mark the past-due unpaid instalments ``late``; record a
    ``LoanArrearsChange`` for every loan whose bucket moves; write the loans whose days past due
    or bucket changed. Only loans with something past due, or still showing arrears, are read."""
    today = today or utcnow().date()
    if db.session.get_bind().dialect.name == "postgresql":
        # Two runs at once: the second waits here and then finds nothing left to change.
        db.session.execute(select(func.pg_advisory_xact_lock(ARREARS_LOCK)))
        # The per-loan look-ups make the planner over-estimate, and compiling the statements
        # (JIT) then took longer than running them.
        db.session.execute(text("SET LOCAL jit = off"))
    settled = select(LoanApplication.id).where(LoanApplication.stage == "settled")
    marked = db.session.execute(
        update(LoanInstalment)
        .where(
            LoanInstalment.status.in_(("scheduled", "partial")),
            LoanInstalment.due_date < today,
            _unpaid(),
            LoanInstalment.application_id.in_(settled),
        )
        .values(status="late"),
        execution_options={**UNSCOPED, "synchronize_session": False},
    ).rowcount

    past_due = select(LoanInstalment.application_id).where(
        LoanInstalment.due_date < today, _unpaid()
    )
    candidates = and_(
        LoanApplication.stage == "settled",
        or_(
            LoanApplication.id.in_(past_due),
            LoanApplication.days_past_due != 0,
            LoanApplication.arrears_bucket != "current",
        ),
    )
    oldest_due = (
        select(func.min(LoanInstalment.due_date))
        .where(
            LoanInstalment.application_id == LoanApplication.id,
            LoanInstalment.due_date < today,
            _unpaid(),
        )
        .correlate(LoanApplication)
        .scalar_subquery()
    )
    days = func.coalesce(_days_since(today, oldest_due), 0)
    bucket = _bucket_sql(days)
    history = db.session.execute(
        insert(LoanArrearsChange).from_select(
            ["application_id", "changed_on", "from_bucket", "to_bucket", "days_past_due"],
            select(
                LoanApplication.id,
                literal(today, Date),
                LoanApplication.arrears_bucket,
                bucket,
                days,
            ).where(candidates, LoanApplication.arrears_bucket != bucket),
        ),
        execution_options=UNSCOPED,
    ).rowcount
    changed = db.session.execute(
        update(LoanApplication)
        .where(
            candidates,
            or_(LoanApplication.days_past_due != days, LoanApplication.arrears_bucket != bucket),
        )
        .values(days_past_due=days, arrears_bucket=bucket, updated_at=utcnow()),
        execution_options={**UNSCOPED, "synchronize_session": False},
    ).rowcount
    db.session.commit()
    return {
        "instalments_late": marked or 0,
        "loans_updated": changed or 0,
        "bucket_changes": history or 0,
    }


# ---- reminders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One message to one recipient: a member of staff (``user_id``) or a borrower (``address``)."""

    kind: str
    key: str
    subject: str
    body: str
    related: Any
    link: str | None = None
    user_id: int | None = None
    address: str | None = None


@dataclass
class _Due:
    """An instalment with what its messages need: the loan and the borrowers to write to."""

    instalment: LoanInstalment
    reference: str
    bdm_id: int
    borrowers: list[LoanParty]


def _instalments(*criteria) -> list[_Due]:
    """Unpaid instalments of settled loans matching ``criteria``, each with its borrowers that
    have an e-mail address (one per address): one query."""
    rows = db.session.execute(
        select(LoanInstalment, LoanApplication.reference, LoanApplication.bdm_id, LoanParty)
        .join(LoanApplication, LoanApplication.id == LoanInstalment.application_id)
        .outerjoin(
            LoanParty,
            and_(
                LoanParty.application_id == LoanApplication.id,
                LoanParty.role == "borrower",
                LoanParty.email.is_not(None),
                LoanParty.email != "",
            ),
        )
        .where(LoanApplication.stage == "settled", _unpaid(), *criteria)
        .order_by(LoanInstalment.due_date, LoanInstalment.id, LoanParty.id),
        execution_options=UNSCOPED,
    ).all()
    found: dict[int, _Due] = {}
    for instalment, reference, bdm_id, party in rows:
        due = found.setdefault(
            instalment.id,
            _Due(instalment, reference or f"#{instalment.application_id}", bdm_id, []),
        )
        addresses = {p.email.strip().lower() for p in due.borrowers}
        if party is not None and party.email.strip().lower() not in addresses:
            due.borrowers.append(party)
    return list(found.values())


def _money(amount: Decimal) -> str:
    return f"{current_app.config.get('CRM_BASE_CURRENCY', 'INR')} {amount:,.2f}"


def _what(due: _Due) -> str:
    """The instalment named in every message: loan, number, due date and amount."""
    i = due.instalment
    return (
        f"instalment {i.number} of loan {due.reference}, {_money(i.outstanding)}, "
        f"due on {i.due_date:%d %b %Y}"
    )


def _borrower_names(due: _Due) -> str:
    return ", ".join(p.name for p in due.borrowers) or "no borrower with an e-mail address"


def due_soon_notices(today: date, days_before: int) -> list[Notice]:
    notices = []
    for due in _instalments(
        LoanInstalment.due_date > today,
        LoanInstalment.due_date <= today + timedelta(days=days_before),
    ):
        i = due.instalment
        subject = f"{due.reference}: instalment {i.number} of {_money(i.outstanding)} due {i.due_date:%d %b %Y}"
        for party in due.borrowers:
            notices.append(
                Notice(
                    "loan_due_soon",
                    f"loan-due:{i.id}:party:{party.id}",
                    subject,
                    f"Dear {party.name},\n\nThis is a reminder of {_what(due)}. If you have "
                    "already paid, thank you; please ignore this message.",
                    related=i,
                    address=party.email.strip(),
                )
            )
        notices.append(
            Notice(
                "loan_due_soon",
                f"loan-due:{i.id}:user:{due.bdm_id}",
                subject,
                f"Due soon: {_what(due)}.\nBorrowers reminded: {_borrower_names(due)}.",
                related=i,
                link=application_link(i.application_id),
                user_id=due.bdm_id,
            )
        )
    return notices


def _late_stage(days_late: int, stages: Iterable[int]) -> int | None:
    """The latest stage reached, if it was reached at most ``CATCH_UP_DAYS`` days ago."""
    reached = [stage for stage in stages if stage <= days_late]
    if not reached or days_late - max(reached) > CATCH_UP_DAYS:
        return None
    return max(reached)


def _late(today: date, stages: tuple[int, ...]) -> list[tuple[_Due, int, int]]:
    """(instalment, stage, days late) for each instalment at a late stage today."""
    if not stages:
        return []
    found = []
    for due in _instalments(
        LoanInstalment.due_date <= today - timedelta(days=min(stages)),
        LoanInstalment.due_date >= today - timedelta(days=max(stages) + CATCH_UP_DAYS),
    ):
        days_late = (today - due.instalment.due_date).days
        stage = _late_stage(days_late, stages)
        if stage is not None:
            found.append((due, stage, days_late))
    return found


def late_borrower_notices(today: date, stages: tuple[int, ...]) -> list[Notice]:
    notices = []
    for due, stage, days_late in _late(today, stages):
        i = due.instalment
        for party in due.borrowers:
            notices.append(
                Notice(
                    "loan_late_borrower",
                    f"loan-late:{i.id}:{stage}:party:{party.id}",
                    f"{due.reference}: instalment {i.number} is {days_late} days overdue",
                    f"Dear {party.name},\n\nWe have not received {_what(due)}; it is now "
                    f"{days_late} days overdue. Please pay it as soon as possible, or contact "
                    "us if you are having difficulty.",
                    related=i,
                    address=party.email.strip(),
                )
            )
    return notices


def late_bdm_notices(today: date, stages: tuple[int, ...]) -> list[Notice]:
    return [
        Notice(
            "loan_late_bdm",
            f"loan-late-bdm:{due.instalment.id}:{stage}:user:{due.bdm_id}",
            f"{due.reference}: instalment {due.instalment.number} is {days_late} days late",
            f"Unpaid for {days_late} days: {_what(due)}.\nBorrowers: {_borrower_names(due)}.",
            related=due.instalment,
            link=application_link(due.instalment.application_id),
            user_id=due.bdm_id,
        )
        for due, stage, days_late in _late(today, stages)
    ]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def stale_stage_days() -> int:
    """``CRM_LOAN_STALE_STAGE_DAYS``: how long an application may stay in an open stage."""
    return int(current_app.config.get("CRM_LOAN_STALE_STAGE_DAYS", 14))


def stale_stage_before(today: date, stale_days: int) -> datetime:
    """An application that entered its stage before this instant has been in it for
    ``stale_days`` days or more on ``today`` (by UTC date)."""
    return _day_start(today - timedelta(days=stale_days) + timedelta(days=1))


def stale_stage(today: date, stale_days: int):
    """The stale-stage rule in SQL: in an open stage (before settlement) for ``stale_days``
    days or more."""
    return and_(
        LoanApplication.stage.in_(OPEN_STAGES),
        LoanApplication.stage_changed_at < stale_stage_before(today, stale_days),
    )


def stale_stage_notices(today: date, stale_days: int) -> list[Notice]:
    """Applications whose stay in an open stage reached ``stale_days`` days (by UTC date) today or
    up to ``CATCH_UP_DAYS`` days ago."""
    reached_on_or_before = today - timedelta(days=stale_days)
    applications = db.session.scalars(
        select(LoanApplication)
        .where(
            stale_stage(today, stale_days),
            LoanApplication.stage_changed_at
            >= _day_start(reached_on_or_before - timedelta(days=CATCH_UP_DAYS)),
        )
        .order_by(LoanApplication.id),
        execution_options=UNSCOPED,
    )
    notices = []
    for application in applications:
        since = application.stage_changed_at
        days = (today - since.date()).days
        reference = application.reference or f"#{application.id}"
        notices.append(
            Notice(
                "loan_stale_stage",
                f"loan-stale:{application.id}:{application.stage}:{since:%Y%m%dT%H%M%S}"
                f":user:{application.bdm_id}",
                f"{reference} has been in {application.stage} for {days} days",
                f"{reference} ({_money(application.amount)}) has been in stage "
                f"{application.stage} since {since:%d %b %Y} ({days} days). "
                "Move it on, or record why it is waiting.",
                related=application,
                link=application_link(application.id),
                user_id=application.bdm_id,
            )
        )
    return notices


def _first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or [""])[0][:80]


def note_reminders(today: date) -> tuple[list[LoanNote], list[Notice]]:
    """Notes whose reminder date is today or up to ``CATCH_UP_DAYS`` days ago, not yet reminded,
    and the messages to their author and the application's BDM."""
    rows = db.session.execute(
        select(LoanNote, LoanApplication.reference, LoanApplication.bdm_id)
        .join(LoanApplication, LoanApplication.id == LoanNote.application_id)
        .where(
            LoanNote.reminded_at.is_(None),
            LoanNote.remind_on <= today,
            LoanNote.remind_on >= today - timedelta(days=CATCH_UP_DAYS),
        )
        .order_by(LoanNote.remind_on, LoanNote.id),
        execution_options=UNSCOPED,
    ).all()
    notices = []
    for note, reference, bdm_id in rows:
        reference = reference or f"#{note.application_id}"
        body = note.body if len(note.body) <= 1000 else note.body[:1000] + "…"
        for user_id in sorted({note.author_id, bdm_id} - {None}):
            notices.append(
                Notice(
                    "loan_note_reminder",
                    f"loan-note:{note.id}:user:{user_id}",
                    f"Reminder on {reference}: {_first_line(note.body)}",
                    f"A note on {reference} asked for a reminder on {note.remind_on:%d %b %Y}:"
                    f"\n\n{body}",
                    related=note,
                    link=application_link(note.application_id),
                    user_id=user_id,
                )
            )
    return [note for note, _, _ in rows], notices


def _queue_reminders(today: date) -> dict[str, int]:
    from app.comms.services import Message, notify_many

    config = current_app.config
    notes, note_notices = note_reminders(today)
    notices = [
        *due_soon_notices(today, int(config.get("CRM_LOAN_DUE_REMINDER_DAYS", 3))),
        *late_borrower_notices(today, tuple(config.get("CRM_LOAN_LATE_BORROWER_DAYS", (3, 7)))),
        *late_bdm_notices(today, tuple(config.get("CRM_LOAN_LATE_BDM_DAYS", (10,)))),
        *stale_stage_notices(today, stale_stage_days()),
        *note_notices,
    ]
    done = already_notified(notice.key for notice in notices)
    messages = []
    for notice in notices:
        if notice.key in done:
            continue
        done.add(notice.key)
        related = notice.related
        messages.append(
            Message(
                notice.kind,
                notice.key,
                notice.subject,
                notice.body,
                user_id=notice.user_id,
                address=notice.address,
                related_type=related.__tablename__ if related is not None else None,
                related_id=related.id if related is not None else None,
                link=notice.link,
                channels=("email",) if notice.address else ("email", "in_app"),
            )
        )
    counts = dict.fromkeys(KINDS, 0)
    for message in notify_many(messages):
        counts[message.kind] += 1
    if notes:
        db.session.execute(
            update(LoanNote)
            .where(LoanNote.id.in_([note.id for note in notes]))
            .values(reminded_at=utcnow()),
            execution_options={**UNSCOPED, "synchronize_session": False},
        )
    return counts


def send_loan_reminders(today: date | None = None) -> dict[str, int]:
    """Queue today's loan reminders (see the module's docstring for the rules); commits. Returns
    how many messages of each kind were queued (one per recipient, whatever its channels)."""
    today = today or utcnow().date()
    try:
        counts = _queue_reminders(today)
        db.session.commit()
    except IntegrityError:
        # Another run queued some of the same events first: theirs stand; queue the rest.
        db.session.rollback()
        log.info("loan reminders: another run got there first; queueing what is left")
        counts = _queue_reminders(today)
        db.session.commit()
    return counts
