"""Scheduled report e-mails: which report, in which format, how often, to whom."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of

FREQUENCIES = ("daily", "weekly", "monthly")
SCHEDULE_FORMATS = ("csv", "xlsx", "pdf")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LAST_DAY_OF_MONTH = 28
"""Monthly schedules run on days 1 to 28, which every month has."""

report_schedule_user = Table(
    "report_schedule_user",
    Model.metadata,
    Column(
        "schedule_id",
        Integer,
        ForeignKey(
            "report_schedule.id",
            name="fk_report_schedule_user_schedule_id_report_schedule",
            ondelete="CASCADE",
        ),
        primary_key=True,
    ),
    Column(
        "user_id",
        Integer,
        ForeignKey("ab_user.id", name="fk_report_schedule_user_user_id_ab_user"),
        primary_key=True,
    ),
)


class ReportSchedule(Model):
    """A report sent by e-mail every day, week or month at ``hour`` (UTC), to every member of
    staff holding one of ``recipient_roles`` and to the users named in ``recipients``; each
    recipient gets the report built under their own row scoping. ``last_run_at`` is the start
    of the last period sent: the job claims a period by moving it forward in one UPDATE, so
    two runs at once send it once."""

    __tablename__ = "report_schedule"
    __table_args__ = (
        CheckConstraint(_one_of("frequency", FREQUENCIES), name="ck_report_schedule_frequency"),
        CheckConstraint(_one_of("file_format", SCHEDULE_FORMATS), name="ck_report_schedule_format"),
        CheckConstraint("hour BETWEEN 0 AND 23", name="ck_report_schedule_hour"),
        CheckConstraint(
            "weekday IS NULL OR weekday BETWEEN 0 AND 6", name="ck_report_schedule_weekday"
        ),
        CheckConstraint(
            f"day_of_month IS NULL OR day_of_month BETWEEN 1 AND {LAST_DAY_OF_MONTH}",
            name="ck_report_schedule_day_of_month",
        ),
        CheckConstraint(
            "frequency <> 'weekly' OR weekday IS NOT NULL", name="ck_report_schedule_weekly_day"
        ),
        CheckConstraint(
            "frequency <> 'monthly' OR day_of_month IS NOT NULL",
            name="ck_report_schedule_monthly_day",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    report_key: Mapped[str] = mapped_column(String(60))
    file_format: Mapped[str] = mapped_column(String(10), default="pdf")
    frequency: Mapped[str] = mapped_column(String(10), default="weekly")
    weekday: Mapped[int | None] = mapped_column(Integer)
    """0 = Monday ... 6 = Sunday (weekly schedules)."""
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    hour: Mapped[int] = mapped_column(Integer, default=7)
    """Hour of the day, UTC."""
    recipient_roles: Mapped[str] = mapped_column(String(200), default="")
    """Role names, comma-separated (``Manager,Compliance``)."""
    filters: Mapped[str] = mapped_column(Text, default="{}")
    """The report's filters as its URL takes them, JSON (``{"as_of": "2026-12-31"}``)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_count: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recipients: Mapped[list[User]] = relationship(User, secondary=report_schedule_user)

    @property
    def recipient_ids(self) -> list[int]:
        """The named recipients' user ids (what the API shows and takes as ``recipients``)."""
        return [user.id for user in self.recipients]

    @property
    def role_names(self) -> list[str]:
        return [name for name in (self.recipient_roles or "").split(",") if name]

    def __repr__(self) -> str:
        return self.name


SCHEDULE_FIELDS = (
    "name",
    "report_key",
    "file_format",
    "frequency",
    "weekday",
    "day_of_month",
    "hour",
    "recipient_roles",
    "recipients",
    "filters",
    "active",
)
"""What a schedule's author sets (screen and API alike); the rest is kept by the job."""
