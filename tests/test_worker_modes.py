"""worker.py --scheduler / --no-scheduler as real subprocesses on a real Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("TEST_REDIS_URL")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL not set")


@pytest.fixture
def redis_conn():
    from redis import Redis

    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield conn
    conn.flushdb()


def _env():
    env = dict(os.environ)
    env["REDIS_URL"] = REDIS_URL
    env["CRM_INSTANCE_DIR"] = str(ROOT / "instance")
    env["SCHEDULER_INTERVAL_SECONDS"] = "1"
    return env


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_scheduler_keeps_the_schedule_one_holds_the_lock_and_stops_on_sigterm(redis_conn):
    from app.core.scheduler import scheduled_runs

    first = subprocess.Popen(
        [sys.executable, "worker.py", "--scheduler"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    second = None
    try:
        assert _wait_for(lambda: all(scheduled_runs(redis_conn).values()))
        second = subprocess.Popen(
            [sys.executable, "worker.py", "--scheduler"],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3)
        # Never two runs of a job (a run that fell due meanwhile has moved to its queue, and
        # its next one is scheduled when it runs or at the next check: none is also right).
        assert all(len(ids) <= 1 for ids in scheduled_runs(redis_conn).values())
        second.send_signal(signal.SIGTERM)
        out2, _ = second.communicate(timeout=20)
        assert second.returncode == 0
        assert "scheduler lock held" not in out2
    finally:
        first.send_signal(signal.SIGTERM)
        out1, _ = first.communicate(timeout=20)
        if second and second.poll() is None:
            second.kill()
    assert first.returncode == 0, out1
    assert "scheduler lock held" in out1
    assert "FinCRM scheduler stopped" in out1
    assert "releasing locks" in out1
    # No lock is left in the first scheduler's name: a replacement takes over at once. (A lock
    # held by another scheduler on the same Redis is that one's, and is left alone.)
    name = re.search(r"FinCRM scheduler (\S+) for:", out1).group(1)
    owners = {redis_conn.get(key) for key in redis_conn.scan_iter("rq:scheduler-lock:*")}
    assert name.encode() not in owners


def test_no_scheduler_worker_schedules_nothing(redis_conn):
    from app.core.scheduler import scheduled_runs

    result = subprocess.run(
        [sys.executable, "worker.py", "--no-scheduler", "--burst"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "periodic jobs scheduled" not in result.stdout
    assert not any(scheduled_runs(redis_conn).values())


def test_scheduler_and_no_scheduler_exclude_each_other(redis_conn):
    result = subprocess.run(
        [sys.executable, "worker.py", "--scheduler", "--no-scheduler"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
