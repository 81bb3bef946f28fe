"""The trial balance as a registered report: exported as CSV, XLSX or PDF from its screen or
``/reports/trial-balance/export/<fmt>?as_of=YYYY-MM-DD``, and available to scheduled e-mails."""

from __future__ import annotations

from app.ledger import services
from app.reports.registry import Filters, Table, register_report

COLUMNS = ("code", "account", "class", "currency", "debit", "credit", "balance (debit +)")


def trial_balance_table(filters: Filters) -> Table:
    """One row per account (balance positive for debit), then each currency's totals."""
    as_of = services.parse_as_of(filters.get("as_of"))
    report = services.trial_balance_report(as_of)
    rows: list[list[object]] = [
        [
            row.code,
            row.name,
            row.account_class,
            row.currency,
            row.debit,
            row.credit,
            row.balance,
        ]
        for row in report.rows
    ]
    rows.extend(
        ["", "Total", "", total.currency, total.debit, total.credit, total.difference]
        for total in report.currencies
    )
    words = {"As of": as_of.isoformat()} if as_of else {"Entries": "all"}
    return Table("Trial balance", COLUMNS, rows, words)


TRIAL_BALANCE = register_report(
    "trial-balance", "Trial balance", "Ledger", trial_balance_table, page="TrialBalanceView.report"
)
