"""Sales: the lead funnel and conversion rates by source and by agent.

Leads are counted by when they were created (the period), branch and assigned agent; each bar
opens the lead list with the same filters.
"""

from __future__ import annotations

from decimal import Decimal

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import case, func, select

from app.dashboards.base import ChartSpec, Dashboard, label_of
from app.dashboards.charts import Bar, Chart
from app.dashboards.filters import DashboardFilters, person_name
from app.dashboards.links import EQ, REL, instant_range, list_url
from app.extensions import db
from app.leads.models import LEAD_SOURCES, LEAD_STATUSES, Lead


def _where(filters: DashboardFilters) -> list:
    clauses = []
    if filters.start is not None:
        clauses.append(Lead.created_at >= filters.start)
    if filters.end is not None:
        clauses.append(Lead.created_at < filters.end)
    if filters.branch is not None:
        clauses.append(Lead.branch_id == filters.branch)
    if filters.agent is not None:
        clauses.append(Lead.assigned_agent_id == filters.agent)
    return clauses


def _lead_list(filters: DashboardFilters, *conditions) -> str:
    common = [*instant_range("created_at", filters.start, filters.end)]
    if filters.branch is not None:
        common.append(("branch", REL, filters.branch))
    if filters.agent is not None:
        common.append(("assigned_agent", REL, filters.agent))
    return list_url("LeadView", [*conditions, *common])


def lead_funnel(filters: DashboardFilters) -> Chart:
    counts = dict(
        db.session.execute(
            select(Lead.status, func.count(Lead.id)).where(*_where(filters)).group_by(Lead.status)
        ).all()
    )
    bars = [
        Bar(
            label_of(status),
            counts.get(status, 0),
            counts.get(status, 0),
            _lead_list(filters, ("status", EQ, status)),
            f"{label_of(status)}: {counts.get(status, 0)} leads",
        )
        for status in LEAD_STATUSES
    ]
    return Chart(
        key="lead-funnel",
        title="Lead funnel",
        value_title="Leads",
        bars=bars,
        columns=("Status", "Leads"),
        rows=[(bar.label, bar.count) for bar in bars],
        note="Leads created in the period, by where they stand now.",
    )


def _rate(converted: int, total: int) -> Decimal:
    if not total:
        return Decimal("0.0")
    return (Decimal(converted) * 100 / Decimal(total)).quantize(Decimal("0.1"))


def _conversion_columns():
    converted = func.count(case((Lead.status == "converted", Lead.id)))
    return func.count(Lead.id), converted


def conversion_by_source(filters: DashboardFilters) -> Chart:
    total, converted = _conversion_columns()
    found = {
        source: (n, c)
        for source, n, c in db.session.execute(
            select(Lead.source, total, converted).where(*_where(filters)).group_by(Lead.source)
        ).all()
    }
    bars, rows = [], []
    for source in LEAD_SOURCES:
        n, c = found.get(source, (0, 0))
        rate = _rate(c, n)
        bars.append(
            Bar(
                label_of(source),
                rate,
                c,
                _lead_list(filters, ("source", EQ, source), ("status", EQ, "converted")),
                f"{label_of(source)}: {c} of {n} converted ({rate}%)",
            )
        )
        rows.append((label_of(source), n, c, rate))
    return Chart(
        key="conversion-by-source",
        title="Conversion rate by source",
        value_title="Converted (%)",
        bars=bars,
        columns=("Source", "Leads", "Converted", "Conversion rate (%)"),
        rows=rows,
        note="Share of the period's leads now converted; a bar opens its converted leads.",
        value_range=(0, 100),
    )


def conversion_by_agent(filters: DashboardFilters) -> Chart:
    total, converted = _conversion_columns()
    rows_found = db.session.execute(
        select(
            Lead.assigned_agent_id, User.first_name, User.last_name, User.username, total, converted
        )
        .outerjoin(User, User.id == Lead.assigned_agent_id)
        .where(*_where(filters))
        .group_by(Lead.assigned_agent_id, User.first_name, User.last_name, User.username)
        .order_by(User.first_name, User.last_name, Lead.assigned_agent_id)
    ).all()
    bars, rows = [], []
    for agent_id, first, last, username, n, c in rows_found:
        name = person_name(first, last, username) if agent_id is not None else "(unassigned)"
        rate = _rate(c, n)
        url = (
            _lead_list(filters, ("assigned_agent", REL, agent_id), ("status", EQ, "converted"))
            if agent_id is not None
            else None
        )
        bars.append(Bar(name, rate, c, url, f"{name}: {c} of {n} converted ({rate}%)"))
        rows.append((name, n, c, rate))
    return Chart(
        key="conversion-by-agent",
        title="Conversion rate by agent",
        value_title="Converted (%)",
        bars=bars,
        columns=("Agent", "Leads", "Converted", "Conversion rate (%)"),
        rows=rows,
        note="Share of each agent's leads of the period now converted.",
        value_range=(0, 100),
        orientation="h",
    )


SALES = Dashboard(
    key="sales",
    title="Sales dashboard",
    menu="Pipeline",
    resource="SalesDashboard",
    filters=("date_from", "date_to", "branch", "agent"),
    charts=(
        ChartSpec("lead-funnel", "Lead funnel", lead_funnel),
        ChartSpec("conversion-by-source", "Conversion rate by source", conversion_by_source),
        ChartSpec("conversion-by-agent", "Conversion rate by agent", conversion_by_agent),
    ),
    intro="Leads created in the period (UTC days), in your branch or your own as your role allows.",
)
