"""Admin's view of background work: RQ queues and registries (failed jobs with their error),
the periodic schedule and each periodic job's last run, and where the outbox stands."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import BaseView, expose, has_access
from sqlalchemy import func, select

from app.core.jobs import QUEUES, redis_connection
from app.extensions import db


def queue_overview(connection) -> list[dict]:
    from rq import Queue
    from rq.job import Job
    from rq.registry import (
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    overview = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        failed_registry = FailedJobRegistry(name, connection=connection)
        failed_ids = failed_registry.get_job_ids(0, 49)
        failed = []
        for job in Job.fetch_many(failed_ids, connection=connection):
            if job is None:
                continue
            error = (job.exc_info or "").strip().splitlines()
            failed.append(
                {
                    "id": job.id,
                    "call": job.description,
                    "ended_at": job.ended_at,
                    "error": error[-1] if error else "",
                }
            )
        scheduled_registry = ScheduledJobRegistry(name, connection=connection)
        overview.append(
            {
                "name": name,
                "queued": queue.count,
                "started": StartedJobRegistry(name, connection=connection).count,
                "scheduled": [
                    (job_id, scheduled_registry.get_scheduled_time(job_id))
                    for job_id in scheduled_registry.get_job_ids(0, 49)
                ],
                "finished": FinishedJobRegistry(name, connection=connection).count,
                "failed_count": failed_registry.count,
                "failed": failed,
            }
        )
    return overview


class JobsView(BaseView):
    route_base = "/jobs"
    default_view = "index"
    class_permission_name = "Jobs"
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self):
        from app.comms.models import Notification

        outbox = dict(
            db.session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            ).all()
        )
        connection = redis_connection()
        queues, error = [], None
        if connection is not None:
            try:
                queues = queue_overview(connection)
            except Exception as exc:  # Redis unreachable: say so on the page
                error = str(exc)
        from app.core.periodic_runs import last_runs

        return self.render_template(
            "crm/jobs.html",
            title="Background jobs",
            periodic=last_runs(),
            queues=queues,
            outbox=outbox,
            redis_url=current_app.config.get("REDIS_URL"),
            error=error,
        )
