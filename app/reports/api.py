"""``/api/v1/reportschedule/``: scheduled report e-mails (Admin), checked by the same service as
the screen (an unknown report, role or member of staff answers 422 naming the field)."""

from __future__ import annotations

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.reports.models import ReportSchedule
from app.reports.schedules import prepare_schedule

WRITABLE = [
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
]


class ReportScheduleApi(ServiceModelRestApi):
    resource_name = "reportschedule"
    datamodel = CrmSQLAInterface(ReportSchedule)
    class_permission_name = "ReportSchedule"
    prepare = staticmethod(prepare_schedule)
    allow_browser_login = True
    add_columns = edit_columns = WRITABLE
    list_columns = show_columns = [
        "id",
        *WRITABLE,
        "last_run_at",
        "last_sent_count",
        "last_error",
        "created_at",
    ]
    search_columns = ["name", "report_key", "frequency", "active"]
    order_columns = ["id", "name", "last_run_at"]
    base_order = ("name", "asc")
