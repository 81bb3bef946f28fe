"""Screens for tasks (all, mine, overdue), the calendar, and the private ICS feed."""

from __future__ import annotations

import calendar as month_calendar
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import (
    FilterEqualFunction,
    FilterInFunction,
    get_field_setup_query,
)

from app.core.crud import CrmSQLAInterface, NoFileDownloadMixin, ServiceModelView
from app.core.forms import (
    choice_field,
    display_choice,
    display_timestamp,
    optional_relation_field,
)
from app.core.localtime import (
    LocalTimeColumnsMixin,
    local_date,
    local_midnight,
    local_today,
    user_zone,
)
from app.core.types import utcnow
from app.exports.lists import ExportableListMixin
from app.extensions import db
from app.org import services as org_services
from app.security.roles import VIEW_METHOD_ACTIONS
from app.tasks import calendar as task_calendar
from app.tasks import services
from app.tasks.models import OPEN_TASK_STATUSES, TASK_PRIORITIES, TASK_STATUSES, Task

TASK_LIST_COLUMNS = ["title", "due_at", "priority", "status", "assignee", "lead", "client"]
TASK_SHOW_COLUMNS = [
    "title",
    "description",
    "due_at",
    "priority",
    "status",
    "assignee",
    "branch",
    "lead",
    "client",
    "created_by",
    "completed_at",
    "created_at",
    "updated_at",
]
TASK_LABELS = {
    "due_at": "Due",
    "completed_at": "Completed",
    "created_by": "Created by",
    "lead": "Related lead",
    "client": "Related client",
}
TASK_FORMATTERS = {
    "priority": display_choice,
    "status": display_choice,
    "due_at": display_timestamp,
    "completed_at": display_timestamp,
    "created_at": display_timestamp,
    "updated_at": display_timestamp,
}


class TaskView(ServiceModelView):
    """Every task the signed-in user may see (their own, or their branch's for a manager)."""

    datamodel = CrmSQLAInterface(Task)
    class_permission_name = "Task"
    prepare = staticmethod(services.save_task)

    list_title = "All tasks"
    show_title = "Task"
    add_title = "Add task"
    edit_title = "Edit task"
    list_columns = [*TASK_LIST_COLUMNS, "branch"]
    show_columns = TASK_SHOW_COLUMNS
    add_columns = [
        "title",
        "description",
        "due_at",
        "priority",
        "status",
        "assignee",
        "lead",
        "client",
    ]
    edit_columns = add_columns
    search_columns = ["title", "status", "priority", "due_at", "assignee", "branch", "lead"]
    order_columns = ["title", "due_at", "priority", "status"]
    base_order = ("due_at", "asc")
    label_columns = TASK_LABELS
    formatters_columns = TASK_FORMATTERS
    add_form_extra_fields = {
        "priority": choice_field("Priority", TASK_PRIORITIES),
        "status": choice_field("Status", TASK_STATUSES),
        "assignee": optional_relation_field("Assignee", org_services.assignable_staff, "(me)"),
    }
    edit_form_extra_fields = add_form_extra_fields

    def pre_add(self, item: Task) -> None:
        _rolled_back_on_error(super().pre_add, item)

    def pre_update(self, item: Task) -> None:
        _rolled_back_on_error(super().pre_update, item)


def _rolled_back_on_error(step: Any, item: Task) -> None:
    """The service flushes the task: a refusal must not leave it (or its outbox rows) behind."""
    try:
        step(item)
    except Exception:
        db.session.rollback()
        raise


class FilterSmallerFunction(BaseFilter):
    """``column < func()``, evaluated per request (e.g. due before now)."""

    name = "Filter view where field is smaller than a function's value"
    arg_name = "ltf"

    def apply(self, query: Any, func: Any) -> Any:
        query, field = get_field_setup_query(query, self.model, self.column_name)
        return query.filter(field < func())


def _current_user_id() -> int | None:
    return g.user.id if getattr(g, "user", None) is not None else None


def _open_statuses() -> list[str]:
    return list(OPEN_TASK_STATUSES)


TASK_PERMISSIONS = ["can_read", "can_write", "can_delete"]


class _ReadOnlyTaskList(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    """A fixed selection of tasks; adding and editing happen under All tasks."""

    datamodel = CrmSQLAInterface(Task)
    class_permission_name = "Task"
    method_permission_name = VIEW_METHOD_ACTIONS
    include_route_methods = {"list", "show", "export_list"}
    base_permissions = TASK_PERMISSIONS
    """The same set as TaskView's: views sharing a permission name must declare the same set, or
    FAB's permission sync removes and re-adds the others on every run."""
    list_columns = TASK_LIST_COLUMNS
    show_columns = TASK_SHOW_COLUMNS
    search_columns = ["title", "status", "priority", "due_at", "lead"]
    order_columns = ["title", "due_at", "priority", "status"]
    base_order = ("due_at", "asc")
    label_columns = TASK_LABELS
    formatters_columns = TASK_FORMATTERS


class MyTasksView(_ReadOnlyTaskList):
    """Tasks assigned to the signed-in user."""

    list_title = "My tasks"
    base_filters = [["assignee_id", FilterEqualFunction, _current_user_id]]


class OverdueTasksView(_ReadOnlyTaskList):
    """Open or in-progress tasks past their due time (within the user's rows)."""

    list_title = "Overdue tasks"
    list_columns = [*TASK_LIST_COLUMNS, "branch"]
    base_filters = [
        ["due_at", FilterSmallerFunction, utcnow],
        ["status", FilterInFunction, _open_statuses],
    ]


# ---- the calendar ---------------------------------------------------------------------------


def _events_by_day(start: date, end: date) -> dict[date, list[task_calendar.CalendarEvent]]:
    """The user's events from the start of ``start`` to the start of ``end`` in their zone,
    by the day each falls on there."""
    zone = user_zone()
    by_day: dict[date, list[task_calendar.CalendarEvent]] = defaultdict(list)
    begin, stop = local_midnight(start, zone), local_midnight(end, zone)
    for event in task_calendar.events_for(g.user.id, begin, stop):
        by_day[local_date(event.start, zone)].append(event)
    return by_day


class CalendarView(BaseView):
    """A month and a week of the signed-in user's tasks, follow-ups and reminders, by the days
    of their branch's time zone, and their private calendar feed link (UTC)."""

    route_base = "/calendar"
    default_view = "month"
    class_permission_name = "Task"
    base_permissions = TASK_PERMISSIONS
    method_permission_name = {
        "month": "read",
        "week": "read",
        "create_feed": "read",
        "revoke_feed": "read",
    }

    @expose("/month")
    @has_access
    def month(self):
        return self._month(feed_url=None)

    def _month(self, feed_url: str | None):
        today = local_today()
        year = request.args.get("year", today.year, type=int)
        month = request.args.get("month", today.month, type=int)
        if not (1 <= month <= 12 and 1900 <= year <= 2999):
            abort(400, description="month must be 1-12 and year 1900-2999.")
        weeks = month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
        by_day = _events_by_day(weeks[0][0], weeks[-1][-1] + timedelta(days=1))
        first = date(year, month, 1)
        previous = first - timedelta(days=1)
        following = first + timedelta(days=32)
        return self.render_template(
            "tasks/calendar_month.html",
            title=f"Calendar: {first:%B %Y}",
            weeks=weeks,
            month=month,
            today=today,
            by_day=by_day,
            previous={"year": previous.year, "month": previous.month},
            following={"year": following.year, "month": following.month},
            week_of=first if (today.year, today.month) != (year, month) else today,
            **self._feed_context(feed_url),
        )

    @expose("/week")
    @has_access
    def week(self):
        raw = request.args.get("date")
        try:
            day = date.fromisoformat(raw) if raw else local_today()
        except ValueError:
            abort(400, description="date must be YYYY-MM-DD.")
        monday = day - timedelta(days=day.weekday())
        days = [monday + timedelta(days=n) for n in range(7)]
        by_day = _events_by_day(monday, monday + timedelta(days=7))
        return self.render_template(
            "tasks/calendar_week.html",
            title=f"Calendar: week of {monday:%d %b %Y}",
            days=days,
            today=local_today(),
            by_day=by_day,
            previous=(monday - timedelta(days=7)).isoformat(),
            following=(monday + timedelta(days=7)).isoformat(),
            **self._feed_context(None),
        )

    @expose("/feed/new", methods=["POST"])
    @has_access
    def create_feed(self):
        """Make (or replace) the user's feed link and show it this once."""
        secret = task_calendar.issue_feed_token(g.user.id)
        db.session.commit()
        feed_url = url_for("calendar_feed.feed", token=secret, _external=True)
        return self._month(feed_url=feed_url)

    @expose("/feed/revoke", methods=["POST"])
    @has_access
    def revoke_feed(self):
        if task_calendar.revoke_feed_token(g.user.id):
            db.session.commit()
            flash("Your calendar feed link no longer works.", "info")
        else:
            flash("You have no calendar feed link to revoke.", "warning")
        return redirect(url_for(".month"))

    def _feed_context(self, feed_url: str | None) -> dict:
        return {"feed": task_calendar.feed_token_of(g.user.id), "feed_url": feed_url}


# The feed is fetched by calendar apps, which cannot sign in: the secret in the link is the
# credential. A plain blueprint (no FAB permission), listed as public in the role matrix test.
feed_blueprint = Blueprint("calendar_feed", __name__)


@feed_blueprint.route("/calendar/feed/<string:token>.ics")
def feed(token: str) -> Response:
    user_id = task_calendar.user_for_feed_token(token)
    if user_id is None:
        abort(404)
    return Response(
        task_calendar.build_ics(user_id),
        mimetype="text/calendar",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": 'inline; filename="fincrm.ics"',
            "X-Robots-Tag": "noindex",
        },
    )
