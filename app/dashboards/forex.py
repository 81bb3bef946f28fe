"""Forex: executed exchanges by currency pair in the period, count and amounts.

Amounts stay in their own currencies (sold in the pair's first, bought in its second), so a bar
is the number of exchanges. Filtered by execution time and the client's branch and relationship
manager (``agent``).
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.clients.models import Client
from app.dashboards.base import ChartSpec, Dashboard, money
from app.dashboards.charts import Bar, Chart
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import EQ, instant_range, list_url
from app.extensions import db
from app.forex.models import FxExchange


def volume_by_pair(filters: DashboardFilters) -> Chart:
    where = [FxExchange.status == "executed"]
    drill = [("status", EQ, "executed"), *instant_range("executed_at", filters.start, filters.end)]
    if filters.start is not None:
        where.append(FxExchange.executed_at >= filters.start)
    if filters.end is not None:
        where.append(FxExchange.executed_at < filters.end)
    if filters.branch is not None:
        where.append(Client.branch_id == filters.branch)
        drill.append(("branch_id", EQ, filters.branch))
    if filters.agent is not None:
        where.append(Client.relationship_manager_id == filters.agent)
        drill.append(("agent_id", EQ, filters.agent))
    count = func.count(FxExchange.id)
    found = db.session.execute(
        select(
            FxExchange.sell_currency,
            FxExchange.buy_currency,
            count,
            func.sum(FxExchange.sell_amount),
            func.sum(FxExchange.buy_amount),
        )
        .join(Client, Client.id == FxExchange.client_id)
        .where(*where)
        .group_by(FxExchange.sell_currency, FxExchange.buy_currency)
        .order_by(count.desc(), FxExchange.sell_currency, FxExchange.buy_currency)
    ).all()
    bars, rows = [], []
    for sell, buy, n, sold, bought in found:
        label = f"{sell}/{buy}"
        sold, bought = money(sold), money(bought)
        url = list_url(
            "ClientExchangeListView",
            [*drill, ("sell_currency", EQ, sell), ("buy_currency", EQ, buy)],
        )
        bars.append(
            Bar(
                label,
                n,
                n,
                url,
                f"{label}: {n} exchanges, {sold:,} {sell} sold for {bought:,} {buy}",
            )
        )
        rows.append((label, n, sell, sold, buy, bought))
    return Chart(
        key="fx-volume-by-pair",
        title="FX volume by currency pair",
        value_title="Exchanges",
        bars=bars,
        columns=(
            "Pair (sold/bought)",
            "Exchanges",
            "Sold",
            "Amount sold",
            "Bought",
            "Amount bought",
        ),
        rows=rows,
        note="Exchanges executed in the period (UTC days).",
    )


FOREX = Dashboard(
    key="forex",
    title="Forex dashboard",
    menu="FX volume",
    resource="ForexDashboard",
    filters=("date_from", "date_to", "branch", "agent"),
    charts=(ChartSpec("fx-volume-by-pair", "FX volume by currency pair", volume_by_pair),),
    intro="Exchanges executed in the period (UTC days) for the chosen branch's clients.",
)
