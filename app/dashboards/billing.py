"""Billing: invoices outstanding by age (days past their due date), count and amount, from the
invoice summary (``app.dashboards.desk_summary``).

Outstanding means issued, part paid or overdue; the amount is what is still due (total less
paid). Filtered by the client's branch and relationship manager (``agent``).
"""

from __future__ import annotations

from datetime import timedelta

from app.billing.models import OPEN_INVOICE_STATUSES
from app.dashboards.base import ChartSpec, Dashboard, money, today
from app.dashboards.charts import Bar, Chart
from app.dashboards.desk_summary import open_invoices_by_due_range
from app.dashboards.filters import DashboardFilters
from app.dashboards.links import EQ, IN, day_range, list_url

AGE_BUCKETS = (
    ("not due", None, -1),
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
"""(bucket, fewest days past due, most days past due); ``None`` is open-ended."""


def invoice_ageing(filters: DashboardFilters) -> Chart:
    day = today()
    drill = [("status", IN, list(OPEN_INVOICE_STATUSES))]
    if filters.branch is not None:
        drill.append(("branch_id", EQ, filters.branch))
    if filters.agent is not None:
        drill.append(("agent_id", EQ, filters.agent))
    # Days past due d = today - due_date, so d in [fewest, most] is a range of due dates.
    ranges = {
        name: (
            day - timedelta(days=most) if most is not None else None,
            day - timedelta(days=fewest) if fewest is not None else None,
        )
        for name, fewest, most in AGE_BUCKETS
    }
    found = open_invoices_by_due_range(ranges, filters.branch, filters.agent)
    bars, rows = [], []
    for name, fewest, most in AGE_BUCKETS:
        count, amount = found.get(name, (0, None))
        # The due dates of the bucket: fewest days late = latest due date.
        latest_due = day - timedelta(days=fewest) if fewest is not None else None
        earliest_due = day - timedelta(days=most) if most is not None else None
        url = list_url(
            "OutstandingInvoiceListView", [*drill, *day_range("due_date", earliest_due, latest_due)]
        )
        label = name if name == "not due" else f"{name} days"
        amount = money(amount)
        bars.append(Bar(label, amount, count, url, f"{label}: {count} invoices, {amount:,} due"))
        rows.append((label, count, amount))
    total_count = sum(count for count, _ in found.values())
    total_amount = money(sum((money(amount) for _, amount in found.values()), money(0)))
    return Chart(
        key="invoice-ageing",
        title="Invoices outstanding by age",
        value_title="Amount outstanding",
        bars=bars,
        columns=("Days past due", "Invoices", "Amount outstanding"),
        rows=rows,
        note=f"Issued, part-paid and overdue invoices by days past their due date on {day} (UTC).",
        summary=f"{total_count} invoices outstanding, {total_amount:,} in all.",
    )


BILLING = Dashboard(
    key="billing",
    title="Billing dashboard",
    menu="Receivables",
    resource="BillingDashboard",
    filters=("branch", "agent"),
    charts=(ChartSpec("invoice-ageing", "Invoices outstanding by age", invoice_ageing),),
    intro="Invoices of the chosen branch's and relationship manager's (agent's) clients, today.",
)
