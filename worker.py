"""Background worker: `python worker.py [FLAGS] [QUEUE ...]`.

- `python worker.py [QUEUE ...]` (no flag): single-node development. An RQ worker with its
  scheduler; on start it makes sure every periodic job of app/core/schedule.py has its next run
  scheduled (fixed ids: starting twice never doubles a job).
- `python worker.py --scheduler`: the one scheduler of a scaled-out deployment. Keeps the
  periodic schedule (on start and every SCHEDULER_ENSURE_SECONDS, default 60) and moves due
  scheduled jobs to their queues. It takes RQ's per-queue scheduler lock, so a second scheduler
  stays idle until the first stops. SIGTERM/SIGINT stop it cleanly (locks released).
- `python worker.py --no-scheduler [QUEUE ...]`: works jobs only (no schedule, no scheduler).
- `--schedule-only` makes sure of the schedule and exits; `--burst` works until queues are empty.

With no REDIS_URL there is nothing to consume: `python run.py` then runs the periodic jobs in a
thread, and the worker says so and exits.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from app.core.jobs import QUEUES


def _print_schedule(scheduled: dict[str, str]) -> None:
    print(
        "periodic jobs scheduled: "
        + ", ".join(f"{name} ({job_id})" for name, job_id in scheduled.items()),
        flush=True,
    )


def run_scheduler(connection, queues: list[str], ensure_every: float, interval: int) -> int:
    """Keep the periodic schedule and move due scheduled jobs onto their queues until stopped."""
    from rq.scheduler import RQScheduler

    from app.core.scheduler import ensure_schedule

    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    scheduler = RQScheduler(queues, connection=connection, interval=interval)
    scheduler.register_birth()
    print(f"FinCRM scheduler {scheduler.name} for: {', '.join(queues)}", flush=True)
    next_ensure = 0.0
    try:
        while not stop["requested"]:
            if scheduler.should_reacquire_locks:
                held = scheduler.acquire_locks()
                if held:
                    print(f"scheduler lock held for: {', '.join(sorted(held))}", flush=True)
            scheduler.heartbeat()
            if scheduler.acquired_locks:
                if time.monotonic() >= next_ensure:
                    _print_schedule(ensure_schedule(connection))
                    next_ensure = time.monotonic() + ensure_every
                scheduler.enqueue_scheduled_jobs()
            deadline = time.monotonic() + interval
            while not stop["requested"] and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        scheduler.stop()
        print("FinCRM scheduler stopped", flush=True)
    return 0


def _preload_app() -> None:
    """Build the app once, before RQ forks a work horse per job: each job then starts in
    milliseconds instead of building the app again (about 2 s). No database connection is
    carried into the forks: the pool is emptied after the build."""
    from app.core.jobs import worker_app
    from app.extensions import db

    app = worker_app()
    with app.app_context():
        db.engine.dispose()


def main(argv: list[str]) -> int:
    url = os.environ.get("REDIS_URL")
    if not url:
        print("REDIS_URL is not set: jobs run inline in the web process; no worker needed.")
        return 0
    from redis import Redis
    from rq import Worker

    from app.core.scheduler import ensure_schedule

    args = argv[1:]
    schedule_only = "--schedule-only" in args
    scheduler_only = "--scheduler" in args
    no_scheduler = "--no-scheduler" in args
    burst = "--burst" in args
    if scheduler_only and no_scheduler:
        print("--scheduler and --no-scheduler exclude each other", file=sys.stderr)
        return 2
    queues = [a for a in args if not a.startswith("--")] or list(QUEUES)
    connection = Redis.from_url(url)
    if scheduler_only:
        return run_scheduler(
            connection,
            queues,
            ensure_every=float(os.environ.get("SCHEDULER_ENSURE_SECONDS", "60")),
            interval=max(1, int(os.environ.get("SCHEDULER_INTERVAL_SECONDS", "1"))),
        )
    if not no_scheduler:
        _print_schedule(ensure_schedule(connection))
    if schedule_only:
        return 0
    _preload_app()
    worker = Worker(queues, connection=connection)
    print(f"FinCRM worker on {url} listening to: {', '.join(queues)}", flush=True)
    worker.work(with_scheduler=not no_scheduler, burst=burst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
