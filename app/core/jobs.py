"""The one way code hands work to the background: RQ when Redis is configured, inline otherwise.

A job is an importable function that receives ids (never ORM objects). ``enqueue`` names it by
dotted path; the worker imports it, opens an app context and calls it. With no ``REDIS_URL`` the
embedded default runs the same function at once, in the caller's process, so every feature works
without Redis.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context

QUEUES = ("notifications", "reports", "default")


@dataclass(frozen=True)
class EnqueuedJob:
    id: str
    queue: str
    ran_inline: bool
    result: Any = None


def redis_connection(url: str | None = None):
    from redis import Redis

    url = url or current_app.config.get("REDIS_URL")
    return Redis.from_url(url) if url else None


def enqueue(
    func_path: str,
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    retries: int = 3,
    retry_intervals: list[int] | None = None,
    **kwargs: Any,
) -> EnqueuedJob:
    """Run ``func_path(*args, **kwargs)`` in the background (or inline without Redis).

    A job that fails, or whose worker died under it, runs again up to ``retries`` times, after
    ``retry_intervals`` seconds (10 s, 1 min, 5 min by default; 0 = at once)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
    connection = redis_connection()
    if connection is None:
        result = run_job(func_path, *args, **kwargs)
        return EnqueuedJob(id=job_id or "inline", queue=queue, ran_inline=True, result=result)
    from rq import Queue, Retry

    job = Queue(queue, connection=connection).enqueue_call(
        "app.core.jobs.run_job",
        args=(func_path, *args),
        kwargs=kwargs,
        job_id=job_id,
        retry=Retry(max=retries, interval=(retry_intervals or [10, 60, 300])[:retries])
        if retries
        else None,
    )
    return EnqueuedJob(id=job.id, queue=queue, ran_inline=False)


_worker_app: Flask | None = None


def run_job(func_path: str, *args: Any, **kwargs: Any) -> Any:
    """Import and call a job function inside an app context (the worker's or the caller's)."""
    module_name, _, attribute = func_path.rpartition(".")
    func = getattr(importlib.import_module(module_name), attribute)
    if has_app_context():
        return func(*args, **kwargs)
    with worker_app().app_context():
        return func(*args, **kwargs)


def worker_app() -> Flask:
    global _worker_app
    if _worker_app is None:
        from app import create_app

        _worker_app = create_app()
    return _worker_app
