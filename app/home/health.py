"""The Admin's view of how the system is doing: the outbox backlog, failed jobs and the
scheduler's last runs.

Failed jobs are RQ's failed registries when Redis is configured (read from Redis, no SQL),
otherwise the application's own records of background work (lead imports that failed). The
scheduler's runs are the ``periodic_run`` rows, one per periodic job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import case, func, select

from app.comms.models import Notification
from app.core.periodic_runs import last_runs
from app.core.schedule import BY_NAME
from app.dashboards.links import EQ, list_url
from app.leads.models import LeadImport

LATE_GRACE = timedelta(minutes=2)
"""A periodic job is late when its last run is older than two of its intervals plus this."""


def counts():
    """The one-row aggregate of the health section (outbox backlog, failed lead imports)."""
    backlog = (
        select(
            func.count(case((Notification.status == "pending", 1))).label("health_pending"),
            func.count(case((Notification.status == "failed", 1))).label("health_failed"),
        )
        .where(Notification.status.in_(("pending", "failed")))
        .subquery()
    )
    imports = (
        select(func.count(LeadImport.id)).where(LeadImport.status == "failed").scalar_subquery()
    )
    return select(
        backlog.c.health_pending, backlog.c.health_failed, imports.label("health_imports_failed")
    )


def rq_failed() -> tuple[int | None, str | None]:
    """Jobs in RQ's failed registries (all queues), or None and why when Redis cannot say."""
    from rq.registry import FailedJobRegistry

    from app.core.jobs import QUEUES, redis_connection

    connection = redis_connection()
    if connection is None:
        return None, None
    try:
        return sum(FailedJobRegistry(q, connection=connection).count for q in QUEUES), None
    except Exception as exc:  # Redis unreachable: say so instead of failing the page
        return None, f"Redis cannot be reached ({type(exc).__name__})."


def _late(run, now: datetime) -> bool:
    job = BY_NAME.get(run.name)
    if job is None:
        return False
    return now - run.finished_at > timedelta(seconds=2 * job.every_seconds) + LATE_GRACE


def section(now: datetime, found: dict):
    from app.home.services import Figure, Section, when

    jobs_page = url_for("JobsView.index")
    figures = [
        Figure(
            "Notifications waiting to be sent",
            found["health_pending"],
            list_url("OutboxView", [("status", EQ, "pending")]),
        ),
        Figure(
            "Notifications failed",
            found["health_failed"],
            list_url("OutboxView", [("status", EQ, "failed")]),
            urgent=True,
        ),
    ]
    notes: list[str] = []
    if current_app.config.get("REDIS_URL"):
        failed, error = rq_failed()
        if error:
            notes.append(error)
        figures.append(
            Figure("Failed background jobs (RQ)", failed or 0, f"{jobs_page}#queues", urgent=True)
        )
    else:
        figures.append(
            Figure(
                "Lead imports failed",
                found["health_imports_failed"],
                list_url("LeadImportView", [("status", EQ, "failed")]),
                urgent=True,
            )
        )
    runs = last_runs()
    failing = [run for run in runs if not run.succeeded]
    late = [run for run in runs if _late(run, now)]
    figures.append(
        Figure(
            "Periodic jobs whose last run failed",
            len(failing),
            f"{jobs_page}#periodic",
            urgent=True,
            note=", ".join(run.name for run in failing),
        )
    )
    figures.append(
        Figure(
            "Periodic jobs late",
            len(late),
            f"{jobs_page}#periodic",
            urgent=True,
            note=", ".join(run.name for run in late),
        )
    )
    if runs:
        notes.insert(
            0, f"Last scheduler run: {runs[0].name}, finished {when(runs[0].finished_at)}."
        )
    else:
        notes.insert(0, "The scheduler has not run any periodic job yet.")
    result = Section("health", "System health", figures, clear_text="All systems normal.")
    result.notes = notes
    if not runs:
        result.problems = 1 + sum(f.count for f in figures if f.urgent)
    return result
