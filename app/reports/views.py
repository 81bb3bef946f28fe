"""The Admin's screen of scheduled report e-mails (checked by ``schedules.prepare_schedule``)."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_appbuilder import expose, has_access
from flask_appbuilder.fields import QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import Select2ManyWidget, Select2Widget
from flask_appbuilder.security.sqla.models import User
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import Optional

from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.errors import DomainError
from app.core.forms import choice_field, display_choice, display_timestamp, display_yes_no
from app.extensions import db
from app.reports import schedules
from app.reports.models import (
    FREQUENCIES,
    SCHEDULE_FIELDS,
    SCHEDULE_FORMATS,
    WEEKDAYS,
    ReportSchedule,
)
from app.reports.registry import get_report
from app.security.roles import ROLES


class RoleNamesField(SelectMultipleField):
    """Role names, stored comma-separated; an unknown name is left for the service to refuse
    by name (422 on ``recipient_roles``) rather than dropped."""

    def process_data(self, value: Any) -> None:
        if isinstance(value, str):
            value = [item for item in value.split(",") if item]
        super().process_data(value)

    def pre_validate(self, form: Any) -> None:
        return None

    def populate_obj(self, obj: Any, name: str) -> None:
        setattr(obj, name, ",".join(self.data or []))


class StaffField(QuerySelectMultipleField):
    """Members of staff by id. FAB's field drops an id it does not know without a word; this
    one refuses it, so the form answers 422 beside "Staff"."""

    def pre_validate(self, form: Any) -> None:
        self.data  # noqa: B018  (resolves the ids sent, marking any that is not staff)
        if self._invalid_formdata:
            raise ValidationError("Not a valid choice: no such member of staff.")
        super().pre_validate(form)


def _active_staff():
    return db.session.query(User).filter(User.active.is_(True)).order_by(User.username)


def _report_title(key: str | None) -> str:
    report = get_report(key or "")
    return report.title if report else f"{key} (no longer offered)"


FORM_FIELDS = {
    "report_key": SelectField(
        "Report",
        choices=schedules.report_choices,
        validate_choice=False,  # the service names an unknown report itself
        widget=Select2Widget(),
    ),
    "file_format": choice_field("Format", SCHEDULE_FORMATS),
    "frequency": choice_field("Frequency", FREQUENCIES),
    "weekday": SelectField(
        "Weekday",
        choices=[("", "—")] + [(str(i), day) for i, day in enumerate(WEEKDAYS)],
        coerce=lambda v: None if v in (None, "") else int(v),
        validate_choice=False,
        validators=[Optional()],
        description="For weekly schedules.",
    ),
    "day_of_month": IntegerField(
        "Day of the month", validators=[Optional()], description="For monthly schedules (1-28)."
    ),
    "hour": IntegerField("Hour (UTC)", default=7, description="0-23, UTC."),
    "recipient_roles": RoleNamesField(
        "Roles",
        choices=[(name, name) for name in ROLES],
        widget=Select2ManyWidget(),
        validators=[Optional()],
        description="Everyone holding one of these roles gets the report, for their own rows.",
    ),
    "recipients": StaffField(
        "Staff",
        query_func=_active_staff,
        get_pk_func=lambda user: user.id,
        get_label=lambda user: f"{user.first_name} {user.last_name} ({user.username})",
        widget=Select2ManyWidget(),
        validators=[Optional()],
        description="Named members of staff who get it too (for their own rows).",
    ),
    "filters": TextAreaField(
        "Filters",
        validators=[Optional()],
        description='The report\'s filters as JSON, e.g. {"as_of": "2026-12-31"}; empty for none.',
    ),
    "active": BooleanField("Active", default=True),
}
COLUMNS = list(SCHEDULE_FIELDS)


class ReportScheduleView(ServiceModelView):
    """Reports e-mailed daily, weekly or monthly to roles and named staff (Admin only)."""

    datamodel = CrmSQLAInterface(ReportSchedule)
    class_permission_name = "ReportSchedule"
    prepare = staticmethod(schedules.prepare_schedule)

    list_title = "Scheduled reports"
    add_title = "Schedule a report e-mail"
    edit_title = "Edit a scheduled report"
    show_title = "Scheduled report"
    list_columns = [
        "name",
        "report_key",
        "file_format",
        "frequency",
        "recipient_roles",
        "recipients",
        "active",
        "last_run_at",
        "last_sent_count",
    ]
    show_columns = [*COLUMNS, "last_run_at", "last_sent_count", "last_error", "created_at"]
    add_columns = edit_columns = COLUMNS
    search_columns = ["name", "report_key", "frequency", "active"]
    order_columns = ["name", "report_key", "last_run_at"]
    base_order = ("name", "asc")
    label_columns = {
        "report_key": "Report",
        "file_format": "Format",
        "frequency": "When",
        "recipient_roles": "Roles",
        "recipients": "Staff",
        "last_run_at": "Last period sent (UTC)",
        "last_sent_count": "E-mails last time",
        "last_error": "Problems last time",
        "created_at": "Created (UTC)",
    }
    formatters_columns = {
        "report_key": _report_title,
        "file_format": lambda value: (value or "").upper(),
        "frequency": display_choice,
        "weekday": lambda value: WEEKDAYS[value] if value is not None else "",
        "recipient_roles": lambda value: ", ".join((value or "").split(",")),
        "recipients": lambda users: ", ".join(u.username for u in users or []),
        "active": display_yes_no,
        "last_run_at": display_timestamp,
        "created_at": display_timestamp,
    }
    add_form_extra_fields = edit_form_extra_fields = FORM_FIELDS

    def pre_add(self, item: ReportSchedule) -> None:
        self._remember_refusal(super().pre_add, item)

    def pre_update(self, item: ReportSchedule) -> None:
        self._remember_refusal(super().pre_update, item)

    def _remember_refusal(self, prepare, item: ReportSchedule) -> None:
        try:
            prepare(item)
        except DomainError as exc:
            g.schedule_refusal = exc
            raise

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """FAB's add form; a refused schedule shows the form again with the message, as a 4xx
        answer (422 naming the field) instead of FAB's redirect."""
        g.schedule_refusal = None
        widget = self._add()
        refusal = g.pop("schedule_refusal", None)
        if refusal is None and not widget:
            return self.post_add_redirect()
        if refusal is not None:
            form = self._refused_form(self.add_form, refusal)
            widget = self._get_add_widget(form=form, exclude_cols=[])
        page = self.render_template(self.add_template, title=self.add_title, widgets=widget)
        return page, self._status(refusal)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        g.schedule_refusal = None
        widget = self._edit(pk)
        refusal = g.pop("schedule_refusal", None)
        if refusal is None and not widget:
            return self.post_edit_redirect()
        if refusal is not None:
            form = self._refused_form(self.edit_form, refusal)
            widget = self._get_edit_widget(form=form, exclude_cols=[])
        page = self.render_template(self.edit_template, title=self.edit_title, widgets=widget)
        return page, self._status(refusal)

    @staticmethod
    def _refused_form(form_class, refusal: DomainError):
        """The form as it was sent, with the refusal shown beside its field."""
        form = form_class.refresh(request.form)
        form.validate()
        field = getattr(form, refusal.field or "", None)
        if field is not None:
            field.errors = [*field.errors, refusal.message]
        return form

    @staticmethod
    def _status(refusal: DomainError | None) -> int:
        if refusal is not None:
            return refusal.status
        return 422 if request.method == "POST" else 200
