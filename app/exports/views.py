"""Screens of exports: "My exports", one export's page (progress bar, then the download), and
the reports anyone may export (``/reports/<key>/export/<fmt>``)."""

from __future__ import annotations

from flask import g, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access

from app.core.crud import CrmSQLAInterface, FilterCurrentUser, NoFileDownloadMixin
from app.core.forms import display_choice, display_timestamp
from app.core.localtime import LocalTimeColumnsMixin
from app.exports import background, services
from app.exports.models import ExportJob
from app.exports.writers import FORMATS
from app.reports.registry import REPORTS
from app.security.roles import READ


class ExportJobView(LocalTimeColumnsMixin, NoFileDownloadMixin, ModelView):
    """The signed-in user's own background exports, newest first; nobody sees another's."""

    route_base = "/exports"
    datamodel = CrmSQLAInterface(ExportJob)
    class_permission_name = "Export"
    method_permission_name = {
        "list": READ,
        "show": READ,
        "page": READ,
        "progress": READ,
        "download": READ,
    }
    base_permissions = ["can_read"]
    include_route_methods = {"list", "show", "page", "progress", "download"}
    base_filters = [["owner_id", FilterCurrentUser, None]]

    list_title = "My exports"
    list_columns = [
        "created_at",
        "title",
        "file_format",
        "filters_text",
        "status",
        "processed_rows",
        "total_rows",
        "expires_at",
    ]
    search_columns = ["title", "status", "file_format", "created_at"]
    order_columns = ["created_at", "title", "status"]
    base_order = ("created_at", "desc")
    label_columns = {
        "created_at": "Asked for (UTC)",
        "file_format": "Format",
        "filters_text": "Filters",
        "processed_rows": "Rows done",
        "total_rows": "Rows",
        "expires_at": "Kept until (UTC)",
    }
    formatters_columns = {
        "created_at": display_timestamp,
        "expires_at": display_timestamp,
        "status": display_choice,
        "file_format": lambda value: (value or "").upper(),
    }

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        """FAB's show button leads to the export's own page."""
        return redirect(url_for(f"{self.endpoint}.page", pk=pk))

    @expose("/<int:pk>")
    @has_access
    def page(self, pk: int):
        """Where the export stands: a progress bar that polls ``progress``, then the link."""
        job = background.find_own_export(pk, g.user.id)
        return self.render_template(
            "exports/show.html",
            job=job,
            status=background.progress(job),
            title=f"Export: {job.title}",
        )

    @expose("/<int:pk>/progress")
    @has_access
    def progress(self, pk: int):
        """Rows done and the total, as JSON for the progress bar."""
        return jsonify(background.progress(background.find_own_export(pk, g.user.id)))

    @expose("/<int:pk>/download")
    @has_access
    def download(self, pk: int):
        """The file, to its owner only (others: 404); 410 once expired; audited."""
        return background.download(background.find_own_export(pk, g.user.id))


class ReportsView(BaseView):
    """Every registered report the user may read, each exportable as CSV, XLSX or PDF."""

    route_base = "/reports"
    class_permission_name = "Export"
    method_permission_name = {"index": READ, "export": READ}
    base_permissions = ["can_read"]
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        reports = [
            (report, url_for(report.page) if report.page else None)
            for report in sorted(REPORTS.values(), key=lambda r: r.title)
            if services.may_read_report(report)
        ]
        return self.render_template(
            "exports/reports.html", reports=reports, formats=FORMATS, title="Reports"
        )

    @expose("/<string:key>/export/<string:fmt>")
    @has_access
    def export(self, key: str, fmt: str):
        """The report with the URL's filters, under the user's scoping (large ones as a job)."""
        return services.export_report_response(key, fmt, request.args)
