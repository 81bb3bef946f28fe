"""Support: open cases by age, and open cases breached or within their SLA.

Counted in SQL over the reader's cases (row scoping applies: a branch's staff count their
branch's clients' cases). Every bar links to the support case list filtered to the same rows:
the open statuses and the same range of opening or due times.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, case, func, select

from app.core.types import utcnow
from app.dashboards.base import ChartSpec, Dashboard
from app.dashboards.charts import Bar, Chart
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import GT, IN, LT, instant_range, list_url
from app.extensions import db
from app.support.models import OPEN_STATUSES, SupportCase

AGE_BUCKETS = (
    ("Under 1 day", None, 1),
    ("1-3 days", 1, 3),
    ("3-7 days", 3, 7),
    ("Over 7 days", 7, None),
)
"""(label, at least this many days old, younger than this many days); ``None`` is open."""


def _open_cases() -> tuple:
    return ("status", IN, list(OPEN_STATUSES))


def cases_by_age(filters: DashboardFilters) -> Chart:
    now = utcnow()

    def bucket(older: int | None, younger: int | None):
        clauses = []
        if older is not None:
            clauses.append(SupportCase.opened_at <= now - timedelta(days=older))
        if younger is not None:
            clauses.append(SupportCase.opened_at > now - timedelta(days=younger))
        return and_(*clauses)

    counts = db.session.execute(
        select(
            *(func.count(case((bucket(older, younger), 1))) for _, older, younger in AGE_BUCKETS)
        ).where(SupportCase.status.in_(OPEN_STATUSES))
    ).one()
    bars = []
    for (label, older, younger), count in zip(AGE_BUCKETS, counts, strict=True):
        # opened in (now - younger, now - older]: the list's strict range around it
        start = now - timedelta(days=younger) + timedelta(microseconds=1) if younger else None
        end = now - timedelta(days=older) + timedelta(microseconds=1) if older else None
        url = list_url("SupportCaseView", [_open_cases(), *instant_range("opened_at", start, end)])
        bars.append(Bar(label, count, count, url, f"{label}: {count} open cases"))
    return Chart(
        key="support-case-age",
        title="Open support cases by age",
        value_title="Cases",
        bars=bars,
        columns=("Age", "Open cases"),
        rows=[(bar.label, bar.count) for bar in bars],
        note="Cases not yet resolved, by the time since they were opened.",
    )


def cases_by_sla(filters: DashboardFilters) -> Chart:
    now = utcnow()
    breached, within = db.session.execute(
        select(
            func.count(case((SupportCase.sla_due_at < now, 1))),
            func.count(case((SupportCase.sla_due_at >= now, 1))),
        ).where(SupportCase.status.in_(OPEN_STATUSES))
    ).one()
    moment = now.replace(tzinfo=None)
    bars = [
        Bar(
            "Breached",
            breached,
            breached,
            list_url("SupportCaseView", [_open_cases(), ("sla_due_at", LT, moment)]),
            f"Breached: {breached} open cases past their due time",
        ),
        Bar(
            "Within SLA",
            within,
            within,
            list_url(
                "SupportCaseView",
                [_open_cases(), ("sla_due_at", GT, moment - timedelta(microseconds=1))],
            ),
            f"Within SLA: {within} open cases not yet due",
        ),
    ]
    total = breached + within
    share = f"{round(100 * within / total)}% of open cases are within their SLA." if total else ""
    return Chart(
        key="support-sla",
        title="Open support cases: breached or within SLA",
        value_title="Cases",
        bars=bars,
        columns=("SLA", "Open cases"),
        rows=[(bar.label, bar.count) for bar in bars],
        note="Due time: the case's priority's hours from when it was opened or reopened.",
        summary=share,
    )


SUPPORT = Dashboard(
    key="support",
    title="Support dashboard",
    menu="Support overview",
    resource="SupportDashboard",
    filters=(),
    charts=(
        ChartSpec("support-case-age", "Open support cases by age", cases_by_age),
        ChartSpec("support-sla", "Open support cases: breached or within SLA", cases_by_sla),
    ),
    intro="The cases you may see, as they stand now.",
)
