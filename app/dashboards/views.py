"""The dashboard pages (one permission resource per audience) and Plotly's JavaScript."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import plotly
from flask import request, send_file
from flask_appbuilder import BaseView, expose, has_access

from app.core.errors import FieldError
from app.core.replica import replica_reads
from app.dashboards.base import Dashboard
from app.dashboards.catalogue import BILLING, BROKERAGE, COMPLIANCE, FOREX, LENDING, SALES
from app.dashboards.charts import figure_html
from app.dashboards.filters import LABELS, filter_choices, parse_filters
from app.dashboards.support import SUPPORT

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PLOTLY_VERSION = plotly.__version__
EXPORT_FORMATS = ("csv", "xlsx", "pdf")


class DashboardView(BaseView):
    """One audience's dashboard: the filter form, then each chart with its numbers and exports."""

    dashboard: Dashboard
    default_view = "show"
    method_permission_name = {"show": "read"}

    @expose("/")
    @has_access
    def show(self):
        with replica_reads():
            return self._show(self.dashboard)

    def _show(self, dashboard: Dashboard):
        choices = filter_choices(dashboard.filters)
        context = {
            "dashboard": dashboard,
            "choices": choices,
            "labels": LABELS,
            "args": request.args,
            "plotly_src": f"/dashboards/plotly-{PLOTLY_VERSION}.min.js",
        }
        try:
            filters = parse_filters(request.args, dashboard.filters, choices)
        except FieldError as exc:
            page = self.render_template(
                "dashboards/dashboard.html", title=dashboard.title, error=exc, panels=[], **context
            )
            return page, exc.status
        query = urlencode(filters.query_args())
        panels = []
        for spec in dashboard.charts:
            chart = spec.build(filters)
            exports = {
                fmt: f"/reports/{chart.key}/export/{fmt}" + (f"?{query}" if query else "")
                for fmt in EXPORT_FORMATS
            }
            panels.append((chart, figure_html(chart), exports))
        return self.render_template(
            "dashboards/dashboard.html",
            title=dashboard.title,
            error=None,
            panels=panels,
            filters=filters,
            **context,
        )


class SalesDashboardView(DashboardView):
    route_base = "/dashboards/sales"
    class_permission_name = "SalesDashboard"
    dashboard = SALES


class ComplianceDashboardView(DashboardView):
    route_base = "/dashboards/compliance"
    class_permission_name = "ComplianceDashboard"
    dashboard = COMPLIANCE


class LendingDashboardView(DashboardView):
    route_base = "/dashboards/lending"
    class_permission_name = "LendingDashboard"
    dashboard = LENDING


class BrokerageDashboardView(DashboardView):
    route_base = "/dashboards/brokerage"
    class_permission_name = "BrokerageDashboard"
    dashboard = BROKERAGE


class BillingDashboardView(DashboardView):
    route_base = "/dashboards/billing"
    class_permission_name = "BillingDashboard"
    dashboard = BILLING


class ForexDashboardView(DashboardView):
    route_base = "/dashboards/forex"
    class_permission_name = "ForexDashboard"
    dashboard = FOREX


class SupportDashboardView(DashboardView):
    route_base = "/dashboards/support"
    class_permission_name = "SupportDashboard"
    dashboard = SUPPORT


DASHBOARD_VIEWS = (
    SalesDashboardView,
    ComplianceDashboardView,
    LendingDashboardView,
    BrokerageDashboardView,
    BillingDashboardView,
    ForexDashboardView,
    SupportDashboardView,
)


class PlotlyScriptView(BaseView):
    """Plotly's JavaScript from the installed wheel, so no page loads anything from the
    internet. The URL carries the version, so browsers keep it for a year."""

    route_base = "/dashboards"

    @expose(f"/plotly-{PLOTLY_VERSION}.min.js")
    def plotly_js(self):
        response = send_file(
            PLOTLY_JS, mimetype="text/javascript", max_age=365 * 24 * 3600, conditional=True
        )
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response
