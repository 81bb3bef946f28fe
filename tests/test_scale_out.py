"""Scaled out on the real engines: two web processes (gunicorn), two workers and one scheduler
against one PostgreSQL database, one Redis and a real SMTP server. Every notification and every
reminder is e-mailed exactly once, although a worker is killed mid-run and the scheduler restarts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from rq import Queue

import config
from app.comms.models import MessageLog
from app.core.schedule import BY_NAME
from app.core.scheduler import run_id, scheduled_runs
from app.core.types import utcnow
from app.extensions import db
from tests.fault_support import wait_until
from tests.smtp_server import free_port
from tests.support import PASSWORD, REDIS_TEST_URL, make_staff
from tests.test_comms import _notify_many, rq_redis, staff  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
TASKS = 200  # given through the two web nodes: 200 "new task" e-mails, then 200 reminders
NOTIFICATIONS = 1000


class Process:
    """One node of the deployment as a real subprocess; its output goes to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, logs / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def _children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill_9(self) -> None:
        """SIGKILL to the process and its work horse, as when the machine dies."""
        for pid in [*self._children(), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_9()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@pytest.fixture
def deployment(pg_app, mailbox, rq_redis, tmp_path):  # noqa: F811
    env = {
        **os.environ,
        "DATABASE_URL": pg_app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": REDIS_TEST_URL,
        "SECRET_KEY": config.TestConfig.SECRET_KEY,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(mailbox.port),
        "RATELIMIT_ENABLED": "false",
        "CRM_OUTBOX_LEASE_SECONDS": "2",
        "CRM_INSTANCE_DIR": str(tmp_path),
        "STORAGE_LOCAL_ROOT": str(tmp_path / "files"),
        "PYTHONPATH": str(ROOT),
    }
    python = sys.executable
    ports = [free_port(), free_port()]
    nodes = {
        f"web{i}": Process(
            f"web{i}",
            [python, "-m", "gunicorn", "--workers", "1", "--threads", "4"]
            + ["--bind", f"127.0.0.1:{port}", "--timeout", "60", "run:app"],
            env,
            tmp_path,
        )
        for i, port in enumerate(ports, 1)
    }
    worker = [python, "worker.py", "--no-scheduler", "notifications", "default"]
    nodes["worker1"] = Process("worker1", worker, env, tmp_path)
    nodes["worker2"] = Process("worker2", worker, env, tmp_path)
    nodes["scheduler"] = Process("scheduler", [python, "worker.py", "--scheduler"], env, tmp_path)
    for node in nodes.values():
        node.start()
    bases = [f"http://127.0.0.1:{port}" for port in ports]

    def answers(base: str) -> bool:
        try:
            return requests.get(f"{base}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        for base, name in zip(bases, ("web1", "web2"), strict=True):
            assert wait_until(lambda b=base: answers(b), timeout=60), nodes[name].tail()
        # The scheduler is up once it has given every periodic job its next run.
        assert wait_until(lambda: all(scheduled_runs(rq_redis).values()), timeout=60), nodes[
            "scheduler"
        ].tail()
        yield bases, nodes
    finally:
        for node in nodes.values():
            node.stop()


def _due_now(connection, name: str, slot: int) -> None:
    """A run of periodic job ``name`` whose time has come, as the schedule makes them: only the
    scheduler moves it to its queue."""
    job = BY_NAME[name]
    Queue(job.queue, connection=connection).enqueue_at(
        utcnow(), "app.core.scheduler.run_periodic", name, job_id=run_id(job, slot)
    )


def _sent_subjects() -> Counter:
    db.session.expire_all()
    rows = db.session.query(MessageLog.subject).filter(MessageLog.status == "sent").all()
    return Counter(subject for (subject,) in rows)


def test_two_web_nodes_two_workers_and_one_scheduler_send_everything_exactly_once(
    pg_app,
    mailbox,
    rq_redis,  # noqa: F811
    staff,  # noqa: F811
    deployment,
):
    bases, nodes = deployment
    manager = make_staff("Manager", staff[0].branch)
    db.session.commit()
    tokens = []
    for base in bases:
        answer = requests.post(
            f"{base}/api/v1/security/login",
            json={"username": manager.user.username, "password": PASSWORD, "provider": "db"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json()["access_token"])

    # 200 tasks due in half an hour, given through both web nodes in turn.
    due = (utcnow() + timedelta(minutes=30)).isoformat()
    for i in range(TASKS):
        answer = requests.post(
            f"{bases[i % 2]}/api/v1/task/",
            json={
                "title": f"Scale task {i:03d}",
                "assignee_id": staff[i % 2].user_id,
                "due_at": due,
                "priority": "normal",
            },
            headers={"Authorization": f"Bearer {tokens[i % 2]}"},
            timeout=20,
        )
        assert answer.status_code == 201, answer.text
    # The rest of the thousand notifications from the service layer, in batches (each commit
    # wakes the workers).
    for batch in range((NOTIFICATIONS - TASKS) // 100):
        _notify_many(staff[batch % 2].user_id, 100, prefix=f"scale-{batch}")

    # A worker dies mid-run: what it had claimed is sent by the other once its lease ends.
    assert wait_until(lambda: len(mailbox.messages) >= 300, timeout=120), nodes["worker1"].tail()
    nodes["worker1"].kill_9()

    # The scheduler restarts: the periodic runs stay one per job.
    before = scheduled_runs(rq_redis)
    nodes["scheduler"].stop()
    assert nodes["scheduler"].process.returncode == 0, nodes["scheduler"].tail()
    nodes["scheduler"].start()
    time.sleep(2)
    after = scheduled_runs(rq_redis)
    assert after == before
    assert all(len(ids) == 1 for ids in after.values()), after

    # The next outbox sweep and two reminder sweeps come due: the scheduler hands them to the
    # surviving worker.
    now_slot = int(time.time())
    _due_now(rq_redis, "dispatch-outbox", now_slot)
    _due_now(rq_redis, "task-reminders", now_slot)
    _due_now(rq_redis, "task-reminders", now_slot + 1)
    for later in range(2, 8):  # sweeps after the dead worker's lease, as each minute brings
        time.sleep(1)
        _due_now(rq_redis, "dispatch-outbox", now_slot + later)

    expected = NOTIFICATIONS + TASKS
    assert mailbox.wait_for(expected, timeout=180), (
        f"{len(mailbox.messages)} of {expected} e-mails sent\n" + nodes["worker2"].tail()
    )
    time.sleep(3)  # anything sent twice would arrive now
    ids = Counter(message["Message-ID"] for message in mailbox.messages)
    assert len(ids) == expected  # every notification delivered
    # The one message the killed worker had handed to the SMTP server but not yet marked sent
    # may go again, under the same Message-ID (a mail system drops the copy); nothing else does.
    assert sum(ids.values()) - expected <= 1

    subjects = Counter(
        str(message["Subject"])
        for message in {m["Message-ID"]: m for m in mailbox.messages}.values()
    )
    new_tasks = [s for s in subjects if s.startswith("New task: Scale task")]
    reminders = [s for s in subjects if s.startswith("Due soon: Scale task")]
    assert len(new_tasks) == TASKS and len(reminders) == TASKS
    assert all(subjects[s] == 1 for s in new_tasks + reminders)
    logged = _sent_subjects()
    assert sum(logged.values()) == expected  # the message log agrees: each sent once
