"""Every periodic job of FinCRM, declared as data.

Each entry runs ``func`` (a dotted path, called through ``app.core.jobs.run_job``) every
``every_seconds``, aligned to ``offset_seconds`` past the epoch's slots (UTC), on ``queue``.
The scheduler gives each run a fixed id (``periodic__<name>__<slot>``), so however many times the
scheduler starts, each run exists once. Desks add their sweeps here.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE, HOUR, DAY = 60, 3600, 86400


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str
    every_seconds: int
    queue: str = "default"
    offset_seconds: int = 0
    timeout_seconds: int = 600


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("dispatch-outbox", "app.comms.jobs.dispatch_outbox", MINUTE, "notifications"),
    # Folds the rows the dashboard summaries append (app.dashboards.summary): reads stay short.
    PeriodicJob("compact-summaries", "app.dashboards.summary.compact_summaries", MINUTE),
    PeriodicJob("task-reminders", "app.tasks.jobs.send_task_reminders", 5 * MINUTE),
    PeriodicJob("follow-ups", "app.leads.jobs.sweep_follow_ups", 5 * MINUTE),
    # Support cases past their SLA due time: the assignee and a manager, once per breach.
    PeriodicJob("support-breaches", "app.support.jobs.send_breach_reminders", 5 * MINUTE),
    # Scheduled marketing campaigns whose time has come (and any a dead worker left half-sent).
    PeriodicJob("campaigns-due", "app.campaigns.jobs.send_due_campaigns", MINUTE),
    PeriodicJob(
        "daily-digest", "app.comms.jobs.send_daily_digests", DAY, "notifications", 7 * HOUR
    ),
    # 1970-01-01 was a Thursday: +4 days lands weekly runs on Monday 07:00 UTC.
    PeriodicJob(
        "weekly-digest",
        "app.comms.jobs.send_weekly_digests",
        7 * DAY,
        "notifications",
        4 * DAY + 7 * HOUR,
    ),
    PeriodicJob("retention", "app.leads.jobs.apply_retention", DAY, "default", 2 * HOUR),
    PeriodicJob("lead-rescore", "app.leads.jobs.rescore_leads", DAY, "default", 3 * HOUR),
    PeriodicJob("kyc-expiry", "app.kyc.jobs.run_kyc_expiry", DAY, "default", 1 * HOUR),
    # Arrears first (00:30 UTC), reminders once the day's arrears are known (06:00 UTC).
    PeriodicJob("loan-arrears", "app.lending.jobs.update_arrears", DAY, "default", 30 * MINUTE),
    PeriodicJob("loan-reminders", "app.lending.jobs.send_loan_reminders", DAY, "default", 6 * HOUR),
    # Offers at 04:30 UTC (10:00 in India): in the morning of the client's day.
    PeriodicJob("offers", "app.offers.jobs.send_offers", DAY, "default", 4 * HOUR + 30 * MINUTE),
    # Billing: overdue invoices (and stale quotations) at 00:45 UTC, renewals at 06:15 UTC.
    PeriodicJob("invoice-overdue", "app.billing.jobs.mark_overdue", DAY, "default", 45 * MINUTE),
    PeriodicJob(
        "contract-renewals",
        "app.billing.jobs.send_contract_renewals",
        DAY,
        "default",
        6 * HOUR + 15 * MINUTE,
    ),
    PeriodicJob("price-refresh", "app.brokerage.jobs.refresh_prices", HOUR, "default", 5 * MINUTE),
    PeriodicJob("fx-rates", "app.forex.jobs.refresh_rates", 15 * MINUTE),
    # Scheduled report e-mails every hour (each schedule sends its period once), and the files
    # of expired exports and sent report e-mails removed every hour.
    PeriodicJob(
        "report-emails", "app.reports.jobs.send_scheduled_reports", HOUR, "reports", 2 * MINUTE
    ),
    PeriodicJob(
        "export-cleanup", "app.exports.jobs.remove_expired_exports", HOUR, "reports", 40 * MINUTE
    ),
    # The nightly backup at 01:30 UTC into CRM_BACKUP_DIR, with its retention (docs/backup.md).
    PeriodicJob(
        "backup", "app.core.backup.scheduled_backup", DAY, "default", HOUR + 30 * MINUTE, 3600
    ),
)

BY_NAME = {job.name: job for job in PERIODIC_JOBS}
