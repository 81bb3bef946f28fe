"""Every dashboard, in menu order, and their charts' reports in the report registry."""

from __future__ import annotations

import app.dashboards.indexes  # noqa: F401  (the indexes the filters use)
from app.dashboards.base import Dashboard
from app.dashboards.billing import BILLING
from app.dashboards.brokerage import BROKERAGE
from app.dashboards.compliance import COMPLIANCE
from app.dashboards.forex import FOREX
from app.dashboards.lending import LENDING
from app.dashboards.sales import SALES
from app.dashboards.support import SUPPORT
from app.reports.registry import register_report

DASHBOARDS: tuple[Dashboard, ...] = (
    SALES,
    COMPLIANCE,
    LENDING,
    BROKERAGE,
    BILLING,
    FOREX,
    SUPPORT,
)

for _dashboard in DASHBOARDS:
    for _spec in _dashboard.charts:
        register_report(
            _spec.key, _spec.title, _dashboard.resource, _dashboard.report_builder(_spec)
        )
