"""Background worker: `python worker.py` runs an RQ worker with its scheduler on REDIS_URL.

With no REDIS_URL there is nothing to consume: jobs run inline in the web process, so the
worker says so and exits.
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

    queues = argv[1:] or list(QUEUES)
    connection = Redis.from_url(url)
    worker = Worker(queues, connection=connection)
    print(f"FinCRM worker on {url} listening to: {', '.join(queues)}")
    worker.work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
