"""The periodic job of scheduled report e-mails (``app.core.schedule``: hourly)."""

from __future__ import annotations


def send_scheduled_reports() -> int:
    """Send every schedule due this hour (each period once); returns the e-mails queued."""
    from app.reports.mailing import send_due_reports

    return send_due_reports().emails
