"""How FinCRM scales on this machine: `make bench-scale` (after `make bench` filled fincrm_bench).

Web: gunicorn with 1, 2 and 4 processes of 4 threads (gthread) serves the lead list page
(1,000,000 leads) to 10, 40 and 80 concurrent connections (wrk); each step gives requests per
second, p50/p95 latency, errors, the peak number of PostgreSQL connections the app held and the
CPU the web processes used (from /proc), so the figures show which resource runs out first.

Workers: 2,000 notifications written to the outbox (one commit) are delivered to a real SMTP
server (aiosmtpd) by 1 and then 2 `worker.py --no-scheduler notifications` processes; the
figure is e-mails per second from the first sweep's start to the last message accepted.

Writes bench-results/scale-<UTC stamp>.json and prints a markdown table. BENCH_SECONDS sets the
load's length per step (default 10 here); BENCH_SCALE_WEB / BENCH_SCALE_WORKERS = 0 skip a part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("BENCH_SECONDS", "10")

import bench_data  # noqa: E402
import bench_load  # noqa: E402
import bench_run  # noqa: E402

DATABASE_URL = bench_data.DATABASE_URL
WEB_STEPS = [(workers, 4) for workers in (1, 2, 4)]
LOADS = (10, 40, 80)
PAGE = "/leadview/list/"
NOTIFICATIONS = 2000
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
RESULTS_DIR = ROOT / "bench-results"


def _pg(sql: str, *args):
    connection = psycopg2.connect(bench_data._admin_url(DATABASE_URL)[0])
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        connection.close()


class Sampler(threading.Thread):
    """Peak PostgreSQL connections to the bench database, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True
        self.name_ = bench_data._admin_url(DATABASE_URL)[1]

    def run(self) -> None:
        while self.running:
            rows = _pg("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", self.name_)
            self.peak = max(self.peak, rows[0][0] - 1)  # less the sampler's own connection
            time.sleep(0.2)

    def stop(self) -> int:
        self.running = False
        self.join(timeout=5)
        return self.peak


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (gunicorn's workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
        if int(path.parent.name) == pid or ppid == pid:
            total += (utime + stime) / ticks
    return total


def run_web() -> list[dict]:
    results = []
    for workers, threads in WEB_STEPS:
        bench_run.WORKERS, bench_run.THREADS = workers, threads
        process = bench_run.start_gunicorn()
        try:
            cookie, _jwt = bench_run._signed_in(bench_run.USERNAMES["admin"])
            base = f"http://127.0.0.1:{bench_run.PORT}"
            for connections in LOADS:
                bench_load.CONNECTIONS = connections
                bench_load.run_wrk(base, PAGE, {"Cookie": cookie}, bench_load.WARMUP_SECONDS)
                sampler = Sampler()
                sampler.start()
                cpu_before, wall = _cpu_seconds(process.pid), time.perf_counter()
                load = bench_load.run_wrk(base, PAGE, {"Cookie": cookie}, bench_load.SECONDS)
                cpu = _cpu_seconds(process.pid) - cpu_before
                wall = time.perf_counter() - wall
                row = {
                    "processes": workers,
                    "threads": threads,
                    "connections": connections,
                    "requests_per_second": round(load.requests / load.seconds, 1),
                    "p50_ms": load.p50_ms,
                    "p95_ms": load.p95_ms,
                    "errors": load.errors,
                    "pg_connections_peak": sampler.stop(),
                    "web_cpu_cores": round(cpu / wall, 2),
                }
                print(json.dumps(row), flush=True)
                results.append(row)
        finally:
            bench_run.stop_gunicorn(process)
    return results


def _worker(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "CRM_INPROCESS_SCHEDULER": "false",
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", "--no-scheduler", "notifications"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_workers() -> list[dict]:
    from redis import Redis
    from rq import Queue
    from sqlalchemy import delete, select

    from app import create_app
    from app.comms.models import MessageLog, Notification
    from app.comms.services import Message, notify_many
    from app.extensions import db
    from tests.smtp_server import smtp_server

    app = create_app(bench_run._settings())
    redis = Redis.from_url(REDIS_URL)
    results = []
    with app.app_context(), smtp_server() as (mailbox, port):
        from flask_appbuilder.security.sqla.models import User as FabUser

        user_id = db.session.scalar(
            select(FabUser.id).where(FabUser.username == bench_run.USERNAMES["admin"])
        )
        for count in (1, 2):
            prefix = f"scale-bench-{count}-{time.time_ns()}"
            redis.flushdb()
            mailbox.messages.clear()
            notify_many(
                Message("task_assigned", f"{prefix}:{i}", f"Scale {i}", "x", user_id=user_id)
                for i in range(NOTIFICATIONS)
            )
            db.session.commit()
            mine = Notification.idempotency_key.like(f"%{prefix}%")
            emails = (
                db.session.query(Notification).filter(mine, Notification.channel == "email").count()
            )
            workers = [_worker(port) for _ in range(count)]
            try:
                time.sleep(3)  # the workers build the app before their first job
                redis.delete("crm:outbox:wake")
                started = time.perf_counter()
                for _ in range(count):  # one sweep per worker: they share the rows by claims
                    Queue("notifications", connection=redis).enqueue_call(
                        "app.core.jobs.run_job", args=("app.comms.jobs.dispatch_outbox",)
                    )
                if not mailbox.wait_for(emails, timeout=600):
                    raise SystemExit(f"only {len(mailbox.messages)} of {emails} e-mails arrived")
                seconds = time.perf_counter() - started
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(timeout=30)
            row = {
                "workers": count,
                "emails": emails,
                "seconds": round(seconds, 2),
                "emails_per_second": round(emails / seconds, 1),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
            db.session.execute(delete(MessageLog).where(MessageLog.subject.like("Scale %")))
            db.session.execute(delete(Notification).where(mine))
            db.session.commit()
    redis.flushdb()
    return results


def markdown(web: list[dict], workers: list[dict]) -> str:
    lines = []
    if web:
        lines += [
            "| gunicorn | connections | req/s | p50 ms | p95 ms | errors | PG connections | web CPU (cores) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in web:
            lines.append(
                f"| {r['processes']} × {r['threads']} threads | {r['connections']} | "
                f"{r['requests_per_second']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                f"{sum(r['errors'].values())} | {r['pg_connections_peak']} | {r['web_cpu_cores']} |"
            )
        lines.append("")
    if workers:
        lines += ["| workers | e-mails | seconds | e-mails/s |", "|---:|---:|---:|---:|"]
        for r in workers:
            lines.append(
                f"| {r['workers']} | {r['emails']:,} | {r['seconds']} | {r['emails_per_second']} |"
            )
    return "\n".join(lines)


def main() -> None:
    bench_run.require_filled()
    web = run_web() if os.environ.get("BENCH_SCALE_WEB", "1") != "0" else []
    workers = run_workers() if os.environ.get("BENCH_SCALE_WORKERS", "1") != "0" else []
    table = markdown(web, workers)
    print()
    print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"scale-{stamp}.json"
    path.write_text(json.dumps({"web": web, "workers": workers, "cores": os.cpu_count()}, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
