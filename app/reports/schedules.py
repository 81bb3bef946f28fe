"""Scheduled report e-mails: the rules for a schedule (checked before it is saved) and when it
is next due."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.core.errors import FieldError
from app.core.validators import clean_text, parse_choice, parse_int
from app.extensions import db
from app.reports.models import (
    FREQUENCIES,
    LAST_DAY_OF_MONTH,
    SCHEDULE_FORMATS,
    WEEKDAYS,
    ReportSchedule,
)
from app.reports.registry import REPORTS, get_report
from app.security.roles import READ, ROLES, allowed


def report_choices() -> list[tuple[str, str]]:
    return [(key, report.title) for key, report in sorted(REPORTS.items())]


def prepare_schedule(schedule: ReportSchedule) -> ReportSchedule:
    """Check and normalise a schedule; each refusal names its field (422)."""
    schedule.name = clean_text(schedule.name, "name", 120, required=True)
    key = (schedule.report_key or "").strip()
    report = get_report(key)
    if report is None:
        known = ", ".join(sorted(REPORTS)) or "none yet"
        raise FieldError(f"{key!r} is not a report; one of: {known}.", "report_key")
    schedule.report_key = key
    schedule.file_format = parse_choice(schedule.file_format, "file_format", SCHEDULE_FORMATS)
    schedule.frequency = parse_choice(schedule.frequency, "frequency", FREQUENCIES)
    schedule.hour = parse_int(schedule.hour, "hour", 0, 23)
    if schedule.frequency == "weekly":
        schedule.weekday = parse_int(schedule.weekday, "weekday", 0, 6)
    else:
        schedule.weekday = None
    if schedule.frequency == "monthly":
        schedule.day_of_month = parse_int(
            schedule.day_of_month, "day_of_month", 1, LAST_DAY_OF_MONTH
        )
    else:
        schedule.day_of_month = None
    schedule.recipient_roles = _checked_roles(schedule.recipient_roles, report)
    _check_users(schedule.recipients, report)
    if not schedule.recipient_roles and not schedule.recipients:
        raise FieldError("choose at least one role or member of staff.", "recipient_roles")
    schedule.filters = _checked_filters(schedule.filters, report)
    if schedule.active is None:
        schedule.active = True
    return schedule


def _checked_roles(value: Any, report) -> str:
    names = value if isinstance(value, (list, tuple, set)) else str(value or "").split(",")
    names = [str(name).strip() for name in names if str(name).strip()]
    for name in names:
        if name not in ROLES:
            raise FieldError(
                f"{name!r} is not a role; one of: {', '.join(ROLES)}.", "recipient_roles"
            )
        if not allowed(name, report.resource, READ):
            raise FieldError(f"{name} may not read the {report.title}.", "recipient_roles")
    return ",".join(dict.fromkeys(names))


def _check_users(users: list[User], report) -> None:
    for user in users:
        if user is None or db.session.get(User, user.id) is None:
            raise FieldError("is not a member of staff.", "recipients")
        if not any(allowed(role.name, report.resource, READ) for role in user.roles):
            raise FieldError(f"{user.username} may not read the {report.title}.", "recipients")


def _checked_filters(value: Any, report) -> str:
    text = (value or "").strip() if isinstance(value, str) else json.dumps(value or {})
    if not text:
        return "{}"
    try:
        filters = json.loads(text)
    except ValueError as exc:
        raise FieldError(
            f'must be a JSON object such as {{"as_of": "2026-12-31"}}: {exc}', "filters"
        ) from exc
    if not isinstance(filters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in filters.items()
    ):
        raise FieldError("must be a JSON object of names and text values.", "filters")
    from app.core.errors import DomainError
    from app.exports.services import build_report

    try:
        build_report(report, filters)  # the report reads its own filters; a bad one is named
    except DomainError as exc:
        raise FieldError(str(exc), "filters") from exc
    return json.dumps(filters, sort_keys=True)


def recipients_of(schedule: ReportSchedule) -> list[User]:
    """Active staff holding one of the schedule's roles, and the users it names, once each."""
    from flask_appbuilder.security.sqla.models import Role

    found: dict[int, User] = {}
    if schedule.role_names:
        holders = db.session.scalars(
            select(User)
            .join(User.roles)
            .where(Role.name.in_(schedule.role_names), User.active.is_(True))
            .order_by(User.id)
        )
        found.update({user.id: user for user in holders})
    for user in schedule.recipients:
        if user.active:
            found.setdefault(user.id, user)
    return [found[user_id] for user_id in sorted(found)]


def latest_due(schedule: ReportSchedule, now: datetime) -> datetime:
    """The start of the most recent period at or before ``now`` (UTC)."""
    now = now.astimezone(UTC)
    at = time(schedule.hour, tzinfo=UTC)
    today = now.date()
    if schedule.frequency == "daily":
        due = datetime.combine(today, at)
        return due if due <= now else due - timedelta(days=1)
    if schedule.frequency == "weekly":
        day = today - timedelta(days=(today.weekday() - schedule.weekday) % 7)
        due = datetime.combine(day, at)
        return due if due <= now else due - timedelta(days=7)
    day = min(schedule.day_of_month, LAST_DAY_OF_MONTH)
    due = datetime.combine(today.replace(day=day), at)
    if due <= now:
        return due
    previous = today.replace(day=1) - timedelta(days=1)
    return datetime.combine(previous.replace(day=day), at)


def describe(schedule: ReportSchedule) -> str:
    """``Weekly on Monday at 07:00 UTC``."""
    hour = f"{schedule.hour or 0:02d}:00 UTC"
    if schedule.frequency == "weekly" and schedule.weekday is not None:
        return f"Weekly on {WEEKDAYS[schedule.weekday]} at {hour}"
    if schedule.frequency == "monthly" and schedule.day_of_month:
        return f"Monthly on day {schedule.day_of_month} at {hour}"
    return f"Daily at {hour}"
