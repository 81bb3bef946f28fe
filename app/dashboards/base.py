"""What a dashboard is: its audience's resource, the filters it offers and its charts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func

from app.core.types import utcnow
from app.dashboards.charts import Chart
from app.dashboards.filters import DashboardFilters, parse_filters
from app.extensions import db
from app.reports.registry import Table

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ChartSpec:
    key: str
    """Also the key of the chart's report."""
    title: str
    build: Callable[[DashboardFilters], Chart]


@dataclass(frozen=True)
class Dashboard:
    key: str
    """URL part: ``/dashboards/<key>/``."""
    title: str
    menu: str
    resource: str
    """Permission resource (``app.security.roles.RESOURCES``), one per audience."""
    filters: tuple[str, ...]
    charts: tuple[ChartSpec, ...]
    intro: str = ""

    def report_builder(self, spec: ChartSpec) -> Callable[[Mapping[str, str]], Table]:
        """The chart's report: the same filters (as URL text), the same SQL, a table."""

        def build(args: Mapping[str, str]) -> Table:
            filters = parse_filters(args, self.filters)
            chart = spec.build(filters)
            return Table(chart.title, chart.columns, chart.rows, filters.in_words())

        build.__name__ = f"report_{spec.key.replace('-', '_')}"
        return build


def today() -> date:
    return utcnow().date()


def money(value: object) -> Decimal:
    """A sum from SQL as money (SQLite hands back floats for numeric sums)."""
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def utc_month(column):
    """``YYYY-MM`` of a UTC timestamp column, in SQL (PostgreSQL converts from the session's
    time zone to UTC first; SQLite stores UTC)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def label_of(value: str | None) -> str:
    return value.replace("_", " ").capitalize() if value else "(none)"
