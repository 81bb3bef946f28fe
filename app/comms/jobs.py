"""Background jobs of the communication desk (each opens no context: run_job provides it)."""

from __future__ import annotations

from app.comms import services


def dispatch_outbox() -> dict:
    services.sweep_started()
    report = services.dispatch_outbox()
    return {"sent": report.sent, "retried": report.retried, "failed": report.failed}


def send_daily_digests() -> int:
    return services.send_digests("daily")


def send_weekly_digests() -> int:
    return services.send_digests("weekly")
