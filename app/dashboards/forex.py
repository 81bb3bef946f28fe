"""Forex: executed exchanges by currency pair in the period, count and amounts, from the
exchange summary (``app.dashboards.desk_summary``).

Amounts stay in their own currencies (sold in the pair's first, bought in its second), so a bar
is the number of exchanges. Filtered by execution time and the client's branch and relationship
manager (``agent``).
"""

from __future__ import annotations

from app.dashboards.base import ChartSpec, Dashboard, money
from app.dashboards.charts import Bar, Chart
from app.dashboards.desk_summary import exchanges_by_pair
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import EQ, instant_range, list_url


def volume_by_pair(filters: DashboardFilters) -> Chart:
    drill = [("status", EQ, "executed"), *instant_range("executed_at", filters.start, filters.end)]
    if filters.branch is not None:
        drill.append(("branch_id", EQ, filters.branch))
    if filters.agent is not None:
        drill.append(("agent_id", EQ, filters.agent))
    found = exchanges_by_pair(filters.date_from, filters.date_to, filters.branch, filters.agent)
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
