"""Background worker: `python worker.py [QUEUE ...]` runs an RQ worker with its scheduler.

On start it makes sure every periodic job of app/core/schedule.py has its next run scheduled
(fixed ids: starting twice never doubles a job). `python worker.py --schedule-only` does only
that and exits. With no REDIS_URL there is nothing to consume: `python run.py` then runs the
periodic jobs in a thread, and the worker says so and exits.
"""

from __future__ import annotations

import os
import sys

from app.core.jobs import QUEUES


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
    burst = "--burst" in args
    queues = [a for a in args if not a.startswith("--")] or list(QUEUES)
    connection = Redis.from_url(url)
    scheduled = ensure_schedule(connection)
    print(
        "periodic jobs scheduled: "
        + ", ".join(f"{name} ({job_id})" for name, job_id in scheduled.items())
    )
    if schedule_only:
        return 0
    worker = Worker(queues, connection=connection)
    print(f"FinCRM worker on {url} listening to: {', '.join(queues)}", flush=True)
    worker.work(with_scheduler=True, burst=burst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
