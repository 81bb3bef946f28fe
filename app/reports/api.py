"""``/api/v1/reportschedule/``: scheduled report e-mails (Admin), checked by the same service as
the screen (an unknown report, role or member of staff answers 422 naming the field). Named
recipients are user ids: ``recipients`` when writing, ``recipient_ids`` when reading (never the
users' records themselves)."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.security.sqla.models import User
from marshmallow import ValidationError, fields
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema
from sqlalchemy import select

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.extensions import db
from app.reports.models import SCHEDULE_FIELDS as WRITABLE
from app.reports.models import ReportSchedule
from app.reports.schedules import prepare_schedule

LARGEST_ID = 2**31 - 1


class UserIds(fields.Field):
    """A list of members of staff by user id; anything else (an object, an unknown id) is
    refused by name instead of reaching the database."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[int]:
        return [user.id for user in value or []]

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= LARGEST_ID for v in value
        ):
            raise ValidationError("must be a list of user ids.")
        users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(value)))}
        unknown = sorted(set(value) - set(users))
        if unknown:
            raise ValidationError(f"no member of staff has the id {unknown[0]}.")
        return [users[v] for v in dict.fromkeys(value)]


class ScheduleWriteSchema(SQLAlchemyAutoSchema):
    class Meta:
        model = ReportSchedule
        load_instance = True
        sqla_session = db.session
        fields = tuple(WRITABLE)

    recipients = UserIds(load_default=list)


class ReportScheduleApi(ServiceModelRestApi):
    resource_name = "reportschedule"
    datamodel = CrmSQLAInterface(ReportSchedule)
    class_permission_name = "ReportSchedule"
    prepare = staticmethod(prepare_schedule)
    allow_browser_login = True
    add_columns = edit_columns = WRITABLE
    add_model_schema = ScheduleWriteSchema()
    edit_model_schema = ScheduleWriteSchema(partial=True)
    list_columns = show_columns = [
        "id",
        *(column if column != "recipients" else "recipient_ids" for column in WRITABLE),
        "last_run_at",
        "last_sent_count",
        "last_error",
        "created_at",
    ]
    search_columns = ["name", "report_key", "frequency", "active"]
    order_columns = ["id", "name", "last_run_at"]
    base_order = ("name", "asc")
