"""Brokerage: the market value of clients' holdings by client segment.

Value is the quantity the segment's clients hold of each instrument x its last price, rounded to
the cent per instrument, read from the client summaries (``app.dashboards.client_summary``); a
bar counts the segment's clients (all of them, holding or not), whom the client list shows when
the bar is clicked.
"""

from __future__ import annotations

from app.clients.models import SEGMENTS
from app.dashboards.base import ChartSpec, Dashboard, label_of, money
from app.dashboards.charts import Bar, Chart
from app.dashboards.client_summary import holdings_by_segment
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import EQ, REL, list_url

SEGMENT_LABELS = {"retail": "Retail", "affluent": "Affluent", "hni": "HNI", "uhni": "UHNI"}


def portfolio_by_segment(filters: DashboardFilters) -> Chart:
    common = []
    if filters.branch is not None:
        common.append(("branch", REL, filters.branch))
    if filters.agent is not None:
        common.append(("relationship_manager", REL, filters.agent))
    held = holdings_by_segment(filters.branch, filters.agent)
    found = {
        segment or None: (
            held.clients.get(segment, 0),
            held.holders.get(segment, 0),
            held.value.get(segment),
        )
        for segment in {*held.clients, *held.value}
    }
    bars, rows = [], []
    for segment in (*SEGMENTS, None):
        if segment is None and segment not in found:
            continue
        clients, holders, total = found.get(segment, (0, 0, None))
        label = SEGMENT_LABELS.get(segment, label_of(segment))
        url = list_url("ClientView", [("segment", EQ, segment), *common]) if segment else None
        amount = money(total)
        bars.append(
            Bar(
                label,
                amount,
                clients,
                url,
                f"{label}: {amount:,} held by {holders} of {clients} clients",
            )
        )
        rows.append((label, clients, holders, amount))
    return Chart(
        key="portfolio-by-segment",
        title="Portfolio value by client segment",
        value_title="Market value",
        bars=bars,
        columns=("Segment", "Clients", "Clients holding", "Market value"),
        rows=rows,
        note="Holdings at the instruments' last prices, in the books' currency.",
    )


BROKERAGE = Dashboard(
    key="brokerage",
    title="Brokerage dashboard",
    menu="Portfolio value",
    resource="BrokerageDashboard",
    filters=("branch", "agent"),
    charts=(
        ChartSpec(
            "portfolio-by-segment", "Portfolio value by client segment", portfolio_by_segment
        ),
    ),
    intro="Clients of the chosen branch and relationship manager (agent), valued today.",
)
