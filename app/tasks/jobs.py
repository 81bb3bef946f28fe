"""Background jobs of the tasks desk (each opens no context: run_job provides it)."""

from __future__ import annotations

from app.tasks import services


def send_task_reminders() -> dict[str, int]:
    """Due-soon and overdue reminders; run it every few minutes (it notifies each event once)."""
    return services.send_task_reminders()
