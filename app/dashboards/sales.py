"""Sales: the lead funnel and conversion rates by source and by agent.

Leads are counted by when they were created (the period), branch and assigned agent; each bar
opens the lead list with the same filters. The three charts share one count of the period's
leads by status, source and agent, read once per request from the sales summary
(``app.dashboards.summary``: whole months from month rows, the days at the ends from day rows),
not from the leads themselves.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from flask import has_request_context, request
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.dashboards.base import ChartSpec, Dashboard, label_of
from app.dashboards.charts import Bar, Chart
from app.dashboards.filters import DashboardFilters, person_name
from app.dashboards.links import EQ, REL, instant_range, list_url
from app.dashboards.summary import status_counts_by_source_and_agent
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


def lead_breakdown(filters: DashboardFilters) -> list[tuple[str, str, int | None, int]]:
    """The period's leads counted by (status, source, assigned agent): what every chart of
    the dashboard sums its own way. Read once per request and filters."""
    key = ("crm.sales_breakdown", filters.start, filters.end, filters.branch, filters.agent)
    if has_request_context() and key in request.environ:
        return request.environ[key]
    rows = status_counts_by_source_and_agent(
        filters.date_from, filters.date_to, filters.branch, filters.agent
    )
    if has_request_context():
        request.environ[key] = rows
    return rows


def lead_funnel(filters: DashboardFilters) -> Chart:
    counts: Counter = Counter()
    for status, _source, _agent, n in lead_breakdown(filters):
        counts[status] += n
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


def _conversions(filters: DashboardFilters, by: int) -> dict:
    """Leads and converted leads of the period per source (``by=1``) or agent (``by=2``)."""
    found: dict = {}
    for row in lead_breakdown(filters):
        n, c = found.get(row[by], (0, 0))
        found[row[by]] = (n + row[3], c + (row[3] if row[0] == "converted" else 0))
    return found


def conversion_by_source(filters: DashboardFilters) -> Chart:
    found = _conversions(filters, 1)
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
    found = _conversions(filters, 2)
    agents = [agent for agent in found if agent is not None]
    names = (
        {
            user_id: (first, last, username)
            for user_id, first, last, username in db.session.execute(
                select(User.id, User.first_name, User.last_name, User.username).where(
                    User.id.in_(agents)
                )
            ).all()
        }
        if agents
        else {}
    )
    # by name, the unassigned leads last
    rows_found = sorted(
        ((agent, *names.get(agent, (None, None, None)), *found[agent]) for agent in found),
        key=lambda r: (r[1] is None, r[1] or "", r[2] or "", r[0] or 0),
    )
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


def leads_by_campaign(filters: DashboardFilters) -> Chart:
    """Leads each campaign brought in during the period, and how many are converted now (from
    the campaign attribution summary, ``app.campaigns.summary``)."""
    from app.campaigns.models import Campaign
    from app.campaigns.summary import leads_and_conversions_by_campaign

    found = leads_and_conversions_by_campaign(
        filters.date_from, filters.date_to, filters.branch, filters.agent
    )
    ids = [campaign_id for campaign_id, _, _ in found]
    names = (
        dict(
            db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all()
        )
        if ids
        else {}
    )
    bars, rows = [], []
    for campaign_id, n, c in sorted(found, key=lambda r: (-r[1], names.get(r[0], ""), r[0])):
        name = names.get(campaign_id, f"Campaign #{campaign_id}")
        rate = _rate(c, n)
        bars.append(
            Bar(
                name,
                n,
                n,
                _lead_list(filters, ("campaign", REL, campaign_id)),
                f"{name}: {n} leads, {c} converted ({rate}%)",
            )
        )
        rows.append((name, n, c, rate))
    return Chart(
        key="leads-by-campaign",
        title="Leads and conversions by campaign",
        value_title="Leads",
        bars=bars,
        columns=("Campaign", "Leads", "Converted", "Conversion rate (%)"),
        rows=rows,
        note="Leads of the period that came in through a campaign; a bar opens them.",
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
        ChartSpec("leads-by-campaign", "Leads and conversions by campaign", leads_by_campaign),
    ),
    intro="Leads created in the period (UTC days), in your branch or your own as your role allows.",
)
