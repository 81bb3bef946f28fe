"""Running the periodic jobs of ``app.core.schedule``: on RQ in production, in a thread when
the app runs embedded (no Redis).

With Redis, ``ensure_schedule`` (called when a worker starts) makes sure each periodic job has
its next run in RQ's scheduled registry; each run first schedules the one after it, then does
its work. Run ids are fixed per time slot (``periodic__<name>__<slot>``), so two schedulers, a
restart, or a run that reschedules itself while ``ensure_schedule`` does the same all end with
one scheduled run per job, never two.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import UTC, datetime

from flask import Flask

from app.core.jobs import run_job
from app.core.schedule import BY_NAME, PERIODIC_JOBS, PeriodicJob

log = logging.getLogger(__name__)


def next_slot(job: PeriodicJob, now: float | None = None) -> tuple[int, datetime]:
    """The number and start time of ``job``'s next slot after ``now`` (epoch seconds)."""
    now = time.time() if now is None else now
    slot = math.floor((now - job.offset_seconds) / job.every_seconds) + 1
    start = slot * job.every_seconds + job.offset_seconds
    return slot, datetime.fromtimestamp(start, tz=UTC)


def run_id(job: PeriodicJob, slot: int) -> str:
    # RQ job ids allow letters, digits, "_" and "-" only.
    return f"periodic__{job.name}__{slot}"


def _schedule_next(job: PeriodicJob, connection, now: float | None = None) -> str:
    from rq import Queue

    slot, start = next_slot(job, now)
    job_id = run_id(job, slot)
    Queue(job.queue, connection=connection).enqueue_at(
        start,
        "app.core.scheduler.run_periodic",
        job.name,
        job_id=job_id,
        job_timeout=job.timeout_seconds,
        description=f"periodic {job.name}",
    )
    return job_id


def scheduled_runs(connection) -> dict[str, list[str]]:
    """Periodic run ids waiting in RQ's scheduled registries, by job name."""
    from rq.registry import ScheduledJobRegistry

    found: dict[str, list[str]] = {job.name: [] for job in PERIODIC_JOBS}
    for queue in {job.queue for job in PERIODIC_JOBS}:
        for job_id in ScheduledJobRegistry(queue, connection=connection).get_job_ids():
            parts = job_id.split("__")
            if len(parts) == 3 and parts[0] == "periodic" and parts[1] in found:
                found[parts[1]].append(job_id)
    return found


def ensure_schedule(connection) -> dict[str, str]:
    """Give every periodic job a next run unless it has one; returns name -> scheduled run id."""
    existing = scheduled_runs(connection)
    result = {}
    for job in PERIODIC_JOBS:
        if existing[job.name]:
            result[job.name] = sorted(existing[job.name])[0]
        else:
            result[job.name] = _schedule_next(job, connection)
    return result


def run_periodic(name: str):
    """RQ entry point of a periodic run: schedule the next one first (so a failure never breaks
    the chain), then do the work (in an app context) and record how it ended."""
    from rq import get_current_job

    job = BY_NAME[name]
    current = get_current_job()
    if current is not None:
        _schedule_next(job, current.connection)
    return run_job("app.core.scheduler.run_recorded", name)


def run_recorded(name: str):
    """Run periodic job ``name`` now (inside an app context) and note the run in
    ``periodic_run``, whether it succeeded or failed (the failure is raised again)."""
    from app.core.periodic_runs import record_run

    job = BY_NAME[name]
    started = datetime.now(UTC)
    try:
        result = run_job(job.func)
    except Exception as exc:
        record_run(job.name, started, exc)
        raise
    record_run(job.name, started)
    return result


class InlineScheduler(threading.Thread):
    """Embedded mode: run due periodic jobs in this process, one at a time."""

    def __init__(
        self, app: Flask, tick_seconds: float = 5.0, started_at: float | None = None
    ) -> None:
        """Every job is due at ``started_at`` (now by default), then at each of its slots."""
        super().__init__(name="fincrm-scheduler", daemon=True)
        self.app, self.tick = app, tick_seconds
        start = time.time() if started_at is None else started_at
        self.next_run = {job.name: start for job in PERIODIC_JOBS}
        self.stopped = threading.Event()

    def run_due(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        ran = []
        for job in PERIODIC_JOBS:
            if now < self.next_run[job.name]:
                continue
            self.next_run[job.name] = next_slot(job, now)[1].timestamp()
            try:
                with self.app.app_context():
                    run_recorded(job.name)
                ran.append(job.name)
            except Exception:  # one failing job must not stop the others
                log.exception("periodic job %s failed", job.name)
        return ran

    def run(self) -> None:
        while not self.stopped.wait(self.tick):
            self.run_due()
