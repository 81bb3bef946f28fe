"""Brokerage: the market value of clients' holdings by client segment.

Value is quantity x the instrument's last price, rounded to the cent per position and summed in
SQL; a bar counts the segment's clients (all of them, holding or not), whom the client list
shows when the bar is clicked.
"""

from __future__ import annotations

from sqlalchemy import distinct, func, select

from app.brokerage.models import Instrument, Position
from app.clients.models import SEGMENTS, Client
from app.dashboards.base import ChartSpec, Dashboard, label_of, money
from app.dashboards.charts import Bar, Chart
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import EQ, REL, list_url
from app.extensions import db

SEGMENT_LABELS = {"retail": "Retail", "affluent": "Affluent", "hni": "HNI", "uhni": "UHNI"}


def portfolio_by_segment(filters: DashboardFilters) -> Chart:
    where = []
    common = []
    if filters.branch is not None:
        where.append(Client.branch_id == filters.branch)
        common.append(("branch", REL, filters.branch))
    if filters.agent is not None:
        where.append(Client.relationship_manager_id == filters.agent)
        common.append(("relationship_manager", REL, filters.agent))
    value = func.sum(func.round(Position.quantity * Instrument.last_price, 2))
    found = {
        segment: (clients, holders, total)
        for segment, clients, holders, total in db.session.execute(
            select(
                Client.segment,
                func.count(distinct(Client.id)),
                func.count(distinct(Position.client_id)),
                value,
            )
            .select_from(Client)
            .outerjoin(Position, (Position.client_id == Client.id) & (Position.quantity > 0))
            .outerjoin(Instrument, Instrument.id == Position.instrument_id)
            .where(*where)
            .group_by(Client.segment)
        ).all()
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
