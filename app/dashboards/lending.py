"""Lending: applications by stage, month and BDM; repayment compliance; arrears buckets.

Every number comes from the lending summaries (``app.dashboards.lending_summary``), read in one
statement for the whole dashboard.

Applications count by when they were created (the period), branch, BDM and broker. Repayment
compliance takes the instalments *due* in the period (up to yesterday: one due today is not
late yet) of those applications' branch, BDM and broker. Arrears are today's.
"""

from __future__ import annotations

from datetime import date, timedelta

from app.dashboards.base import ChartSpec, Dashboard, label_of, money, today
from app.dashboards.charts import Bar, Chart
from app.dashboards.drilldown import TIMELINESS
from app.dashboards.filters import DashboardFilters, midnight, person_name
from app.dashboards.lending_summary import LendingFigures, lending_figures
from app.dashboards.links import EQ, REL, day_range, instant_range, list_url
from app.lending.models import ARREARS_BUCKETS, STAGES

TIMELINESS_LABELS = {"on_time": "Paid on time", "paid_late": "Paid late", "unpaid": "Late, unpaid"}


def _people_conditions(filters: DashboardFilters) -> list:
    conditions = []
    if filters.branch is not None:
        conditions.append(("branch", REL, filters.branch))
    if filters.bdm is not None:
        conditions.append(("bdm", REL, filters.bdm))
    if filters.broker is not None:
        conditions.append(("broker", REL, filters.broker))
    return conditions


def _application_list(filters: DashboardFilters, *conditions, start=None, end=None) -> str:
    start = filters.start if start is None else start
    end = filters.end if end is None else end
    return list_url(
        "LoanApplicationView",
        [*conditions, *instant_range("created_at", start, end), *_people_conditions(filters)],
    )


def _figures(filters: DashboardFilters) -> LendingFigures:
    due_from, due_to = _due_period(filters)
    return lending_figures(
        filters.date_from,
        filters.date_to,
        due_from,
        due_to,
        filters.branch,
        filters.bdm,
        filters.broker,
    )


def by_stage(filters: DashboardFilters) -> Chart:
    found = _figures(filters).by_stage
    bars, rows = [], []
    for stage in STAGES:
        count, amount = found.get(stage, (0, None))
        bars.append(
            Bar(
                label_of(stage),
                count,
                count,
                _application_list(filters, ("stage", EQ, stage)),
                f"{label_of(stage)}: {count} applications, {money(amount):,} requested",
            )
        )
        rows.append((label_of(stage), count, money(amount)))
    return Chart(
        key="applications-by-stage",
        title="Applications by stage",
        value_title="Applications",
        bars=bars,
        columns=("Stage", "Applications", "Amount requested"),
        rows=rows,
        note="Applications created in the period, by the stage they are at now.",
    )


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _month_bounds(month: str) -> tuple[date, date]:
    first = date(int(month[:4]), int(month[5:]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


def by_month(filters: DashboardFilters) -> Chart:
    found = _figures(filters).by_month
    bars, rows = [], []
    span = list(found)
    if filters.date_from:
        span.append(filters.date_from.strftime("%Y-%m"))
    if filters.date_to:
        span.append(filters.date_to.strftime("%Y-%m"))
    months = _months(min(span), max(span)) if span else []
    for m in months:
        count, amount = found.get(m, (0, None))
        first, following = _month_bounds(m)
        start = max(filter(None, [filters.start, midnight(first)]))
        end = min(filter(None, [filters.end, midnight(following)]))
        bars.append(
            Bar(
                m,
                count,
                count,
                _application_list(filters, start=start, end=end),
                f"{m}: {count} applications, {money(amount):,} requested",
            )
        )
        rows.append((m, count, money(amount)))
    return Chart(
        key="applications-by-month",
        title="Applications by month",
        value_title="Applications",
        bars=bars,
        columns=("Month (UTC)", "Applications", "Amount requested"),
        rows=rows,
        note="Applications created each month of the period.",
    )


def by_bdm(filters: DashboardFilters) -> Chart:
    found = _figures(filters).by_bdm
    bars, rows = [], []
    for bdm_id, first, last, username, count, amount in found:
        name = person_name(first, last, username)
        bars.append(
            Bar(
                name,
                count,
                count,
                _application_list(filters, ("bdm", REL, bdm_id)),
                f"{name}: {count} applications, {money(amount):,} requested",
            )
        )
        rows.append((name, count, money(amount)))
    return Chart(
        key="applications-by-bdm",
        title="Applications by BDM",
        value_title="Applications",
        bars=bars,
        columns=("BDM", "Applications", "Amount requested"),
        rows=rows,
        note="Applications created in the period, by their business development manager.",
        orientation="h",
    )


def _due_period(filters: DashboardFilters) -> tuple[date | None, date]:
    yesterday = today() - timedelta(days=1)
    last = min(filters.date_to, yesterday) if filters.date_to else yesterday
    return filters.date_from, last


def repayment_compliance(filters: DashboardFilters) -> Chart:
    first, last = _due_period(filters)
    found = _figures(filters).timeliness
    drill = [*day_range("due_date", first, last)]
    for name, column in (("branch", "branch_id"), ("bdm", "bdm_id"), ("broker", "broker_id")):
        if getattr(filters, name) is not None:
            drill.append((column, EQ, getattr(filters, name)))
    due = sum(count for count, _ in found.values())
    bars, rows = [], []
    for kind in TIMELINESS:
        count, amount = found.get(kind, (0, None))
        share = round(100 * count / due, 1) if due else 0.0
        bars.append(
            Bar(
                TIMELINESS_LABELS[kind],
                count,
                count,
                list_url("DueInstalmentListView", [("timeliness", EQ, kind), *drill]),
                f"{TIMELINESS_LABELS[kind]}: {count} instalments ({share}%), {money(amount):,}",
            )
        )
        rows.append((TIMELINESS_LABELS[kind], count, share, money(amount)))
    on_time = found.get("on_time", (0, None))[0]
    late = due - on_time
    summary = (
        f"On time: {round(100 * on_time / due, 1)}% of {due} instalments due; {late} late."
        if due
        else "No instalment fell due in the period."
    )
    period = f"from {first} to {last}" if first else f"up to {last}"
    return Chart(
        key="repayment-compliance",
        title="Repayment compliance",
        value_title="Instalments",
        bars=bars,
        columns=("Instalments due", "Count", "Share (%)", "Amount due"),
        rows=rows,
        note=f"Instalments due {period} (UTC), paid in full by their due date or not.",
        summary=summary,
        extra={"due": due, "on_time": on_time, "late": late},
    )


def arrears(filters: DashboardFilters) -> Chart:
    found = _figures(filters).arrears
    bars, rows = [], []
    for bucket in ARREARS_BUCKETS:
        count, amount = found.get(bucket, (0, None))
        label = bucket if bucket == "current" else f"{bucket} days"
        url = list_url(
            "LoanApplicationView",
            [
                ("stage", EQ, "settled"),
                ("arrears_bucket", EQ, bucket),
                *_people_conditions(filters),
            ],
        )
        bars.append(
            Bar(label, count, count, url, f"{label}: {count} loans, {money(amount):,} lent")
        )
        rows.append((label, count, money(amount)))
    return Chart(
        key="arrears-buckets",
        title="Loans by arrears bucket",
        value_title="Loans",
        bars=bars,
        columns=("Days past due", "Loans", "Amount lent"),
        rows=rows,
        note="Settled loans as they stand today (not limited by the period).",
    )


LENDING = Dashboard(
    key="lending",
    title="Lending dashboard",
    menu="Loan book",
    resource="LendingDashboard",
    filters=("date_from", "date_to", "branch", "bdm", "broker"),
    charts=(
        ChartSpec("applications-by-stage", "Applications by stage", by_stage),
        ChartSpec("applications-by-month", "Applications by month", by_month),
        ChartSpec("applications-by-bdm", "Applications by BDM", by_bdm),
        ChartSpec("repayment-compliance", "Repayment compliance", repayment_compliance),
        ChartSpec("arrears-buckets", "Loans by arrears bucket", arrears),
    ),
    intro="Applications created in the period (UTC days) and instalments due in it.",
)
