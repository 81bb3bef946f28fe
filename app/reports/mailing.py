"""Sending scheduled reports: each due schedule once per period, each recipient getting the
report built under their own row scoping (a manager: their branch), as an e-mail attachment.

Safe to run twice or at once: a run claims a schedule's period with one conditional UPDATE of
``last_run_at`` (the second run finds nothing to claim), and each e-mail's outbox key is
``report:<schedule>:<period>:<user>``, unique, so a recipient never gets a period twice. The
e-mails go out through the outbox (retries, message log); their files are kept by the storage
backend under ``report-mail/`` and removed ``CRM_EXPORT_TTL_HOURS`` after they were sent.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update

from app.comms.models import Notification
from app.comms.services import Attachment, notify
from app.core.localtime import user_zone
from app.core.types import utcnow
from app.exports.services import build_report, file_name, may_read_report, ttl
from app.exports.writers import FORMATS, write_table
from app.extensions import db
from app.reports.models import ReportSchedule
from app.reports.registry import get_report
from app.reports.schedules import latest_due, recipients_of
from app.security.scoping import UNSCOPED, acting_as, actor_for_user

log = logging.getLogger(__name__)


@dataclass
class MailingRun:
    schedules: int = 0
    emails: int = 0
    problems: list[str] = field(default_factory=list)


def send_due_reports(now: datetime | None = None) -> MailingRun:
    """Send every active schedule whose current period has not been sent yet."""
    now = now or utcnow()
    run = MailingRun()
    schedule_ids = list(
        db.session.scalars(
            select(ReportSchedule.id)
            .where(ReportSchedule.active.is_(True))
            .order_by(ReportSchedule.id),
            execution_options=UNSCOPED,
        )
    )
    for schedule_id in schedule_ids:
        try:
            sent = _send_schedule(schedule_id, now, run)
        except Exception as exc:  # one broken schedule must not stop the others
            db.session.rollback()
            log.exception("scheduled report %s failed", schedule_id)
            run.problems.append(f"schedule {schedule_id}: {exc}")
            continue
        if sent is not None:
            run.schedules += 1
            run.emails += sent
    return run


def _send_schedule(schedule_id: int, now: datetime, run: MailingRun) -> int | None:
    schedule = db.session.get(ReportSchedule, schedule_id)
    due = latest_due(schedule, now)
    if due < schedule.created_at.replace(minute=0, second=0, microsecond=0):
        return None  # its first period starts after it was made
    if schedule.last_run_at is not None and schedule.last_run_at >= due:
        return None
    claimed = db.session.execute(
        update(ReportSchedule)
        .where(
            ReportSchedule.id == schedule_id,
            or_(ReportSchedule.last_run_at.is_(None), ReportSchedule.last_run_at < due),
        )
        .values(last_run_at=due),
        execution_options=UNSCOPED,
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return None  # another run has this period
    report = get_report(schedule.report_key)
    problems: list[str] = []
    sent = 0
    if report is None:
        problems.append(f"the report {schedule.report_key!r} is no longer offered")
    else:
        for user in recipients_of(schedule):
            try:
                sent += _mail_one(schedule, report, user, due)
            except Exception as exc:
                log.exception("scheduled report %s for %s failed", schedule_id, user.username)
                problems.append(f"{user.username}: {exc}")
    db.session.execute(
        update(ReportSchedule)
        .where(ReportSchedule.id == schedule_id)
        .values(last_sent_count=sent, last_error="; ".join(problems)[:2000] or None),
        execution_options=UNSCOPED,
    )
    db.session.commit()
    run.problems.extend(problems)
    return sent


def _mail_one(schedule: ReportSchedule, report, user, due: datetime) -> int:
    """Build the report as ``user`` sees it and queue the e-mail; 1 if queued."""
    from app.core.storage import get_storage

    actor = actor_for_user(user.id)
    if actor is None or not may_read_report(report, actor.roles):
        raise PermissionError(f"may no longer read the {report.title}")
    event_key = f"report:{schedule.id}:{due:%Y%m%dT%H}:{user.id}"
    already = db.session.scalar(
        select(Notification.id).where(Notification.idempotency_key == f"{event_key}:email"),
        execution_options=UNSCOPED,
    )
    if already:
        return 0
    fmt = FORMATS[schedule.file_format]
    with acting_as(actor):
        built = build_report(report, json.loads(schedule.filters or "{}"))
        out = io.BytesIO()
        rows = write_table(
            schedule.file_format, built.table, out, utcnow(), user.username, zone=user_zone()
        )
    token = secrets.token_hex(8)
    key = f"report-mail/{schedule.id}/{due:%Y%m%dT%H}-{user.id}-{token}.{fmt.extension}"
    get_storage().put(key, out.getvalue(), fmt.content_type)
    period = f"{due:%Y-%m-%d}"
    name = file_name(report.key, schedule.file_format, due)
    added = notify(
        "scheduled_report",
        event_key,
        f"{schedule.name}: {report.title} ({period})",
        f"{report.title} for {period} is attached ({fmt.label}, {rows:,} rows), worked out "
        f"for the records you can see in FinCRM.\nFilters: "
        f"{'; '.join(f'{k}: {v}' for k, v in built.table.filters.items()) or 'none'}.",
        user_id=user.id,
        related=schedule,
        channels=("email",),
        attachment=Attachment(key, name, fmt.content_type),
    )
    if not added:  # no e-mail address, or e-mail turned off: the file has no use
        get_storage().delete(key)
        raise LookupError("has no e-mail address or does not take e-mail")
    return 1


def remove_sent_report_files(now: datetime | None = None) -> int:
    """Drop the files of report e-mails sent more than ``CRM_EXPORT_TTL_HOURS`` ago."""
    from app.core.storage import StorageError, get_storage

    cutoff = (now or utcnow()) - ttl()
    storage = get_storage()
    rows = list(
        db.session.execute(
            select(Notification.id, Notification.attachment_key).where(
                Notification.attachment_key.is_not(None),
                Notification.status == "sent",
                Notification.sent_at < cutoff,
            ),
            execution_options=UNSCOPED,
        )
    )
    removed = 0
    for notification_id, key in rows:
        try:
            storage.delete(key)
        except (StorageError, ValueError):
            log.exception("report e-mail %s: file not removed; trying next time", notification_id)
            continue
        db.session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(attachment_key=None),
            execution_options=UNSCOPED,
        )
        removed += 1
    db.session.commit()
    return removed
