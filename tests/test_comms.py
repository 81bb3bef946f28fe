"""Notifications end to end, against a real SMTP server, the real Redis and real RQ workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker

import config
from app.comms.models import MessageLog, Notification, NotificationPreference
from app.comms.services import dispatch_outbox, notify, send_digests
from app.core.jobs import enqueue
from app.extensions import db
from tests.smtp_server import text_body
from tests.support import REDIS_TEST_URL, login, make_branch, make_staff

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rq_redis(pg_app, monkeypatch):
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        conn.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379: run `make services`.")
    conn.flushdb()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    yield conn
    conn.flushdb()


@pytest.fixture
def staff(pg_app):
    branch = make_branch()
    people = [make_staff("Agent", branch) for _ in range(2)]
    db.session.commit()
    return people


def _notify_many(user_id, count, kind="task_assigned", prefix="event"):
    for i in range(count):
        notify(kind, f"{prefix}:{i}", f"{kind} number {i}", "Details inside.", user_id=user_id)
    db.session.commit()


def _status_counts():
    db.session.expire_all()
    rows = db.session.query(Notification.status, Notification.channel).all()
    counts = {}
    for status, channel in rows:
        counts[(channel, status)] = counts.get((channel, status), 0) + 1
    return counts


class WorkerProcess:
    """`python worker.py notifications` as a real subprocess on the test databases."""

    def __init__(self, pg_app, smtp_port, **extra_env):
        self.env = {
            **os.environ,
            "REDIS_URL": REDIS_TEST_URL,
            "DATABASE_URL": pg_app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": config.TestConfig.SECRET_KEY,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_port),
            "CRM_INSTANCE_DIR": str(ROOT / "instance"),
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "worker.py", "notifications"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def kill_9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_task_assigned_is_emailed_by_a_real_worker_and_shown_in_the_centre(
    pg_app, pg_client, mailbox, rq_redis, staff
):
    from datetime import timedelta

    from app.core.types import utcnow
    from tests.support import api_token

    agent = staff[0]
    manager = make_staff("Manager", agent.branch)
    db.session.commit()
    worker = WorkerProcess(pg_app, mailbox.port).start()
    try:
        response = pg_client.post(
            "/api/v1/task/",
            json={
                "title": "Call Asha about her portfolio",
                "assignee_id": agent.user_id,
                "due_at": (utcnow() + timedelta(days=1)).isoformat(),
                "priority": "high",
            },
            headers={"Authorization": f"Bearer {api_token(pg_client, manager.user.username)}"},
        )
        assert response.status_code == 201, response.json
        assert mailbox.wait_for(1), "the worker sent no e-mail"  # the commit woke it through RQ
    finally:
        worker.stop()
    (message,) = mailbox.to(agent.user.email)
    assert message["Subject"].startswith("New task: Call Asha about her portfolio")
    assert "Priority: high" in text_body(message)
    assert {p.get_content_type() for p in message.walk()} >= {"text/plain", "text/html"}
    assert (
        db.session.query(MessageLog).filter_by(recipient=agent.user.email, status="sent").count()
        == 1
    )

    login(pg_client, agent.user.username)
    page = pg_client.get("/notifications/").get_data(as_text=True)
    assert "New task: Call Asha about her portfolio" in page
    assert 'id="unread-count">1<' in page
    pg_client.post("/notifications/read-all")
    assert 'id="unread-count">0<' in pg_client.get("/notifications/").get_data(as_text=True)


def test_a_worker_killed_mid_batch_sends_everything_once_after_restart(
    pg_app, mailbox, rq_redis, staff
):
    agent = staff[0]
    total = 8
    _notify_many(agent.user_id, total)
    mailbox.rcpt_delay = 0.4  # each message waits at RCPT: a kill there loses nothing delivered
    env = {"CRM_OUTBOX_LEASE_SECONDS": "1"}
    first = WorkerProcess(pg_app, mailbox.port, **env).start()
    try:
        enqueue("app.comms.jobs.dispatch_outbox", queue="notifications", retries=0)
        assert _wait(lambda: len(mailbox.messages) >= 3 and mailbox.rcpt_started >= 4), (
            "no progress"
        )
        first.kill_9()  # in the middle of the batch, while message 4 waits at RCPT
    finally:
        first.stop()
    delivered_before_restart = len(mailbox.messages)
    assert 3 <= delivered_before_restart < total
    assert _status_counts().get(("email", "sending"), 0) > 0  # claimed by the dead worker

    time.sleep(1.2)  # the dead worker's lease runs out
    second = WorkerProcess(pg_app, mailbox.port, **env).start()
    try:
        enqueue("app.comms.jobs.dispatch_outbox", queue="notifications", retries=0)
        assert mailbox.wait_for(total, timeout=60), f"only {len(mailbox.messages)} of {total} sent"
        assert _wait(lambda: _status_counts().get(("email", "sent")) == total)
    finally:
        second.stop()
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(ids) == total and len(set(ids)) == total  # every one sent, none twice


def test_a_burst_of_commits_queues_one_outbox_sweep_that_sends_them_all(
    pg_app, mailbox, rq_redis, staff
):
    """Forty commits each writing a notification, with no worker running: one sweep waits in
    the queue, not forty; it sends all forty; a commit after it started queues the next one."""
    from rq import Queue

    agent = staff[0]
    queue = Queue("notifications", connection=rq_redis)
    for i in range(40):
        notify("task_assigned", f"burst:{i}", f"Burst {i}", "x", user_id=agent.user_id)
        db.session.commit()
    assert queue.count == 1

    SimpleWorker(["notifications"], connection=rq_redis).work(burst=True)
    assert mailbox.wait_for(40, timeout=30), f"only {len(mailbox.messages)} of 40 sent"
    assert queue.count == 0

    notify("task_assigned", "burst:after", "After the sweep", "x", user_id=agent.user_id)
    db.session.commit()
    assert queue.count == 1
    SimpleWorker(["notifications"], connection=rq_redis).work(burst=True)
    assert mailbox.wait_for(41, timeout=30)
    subjects = [m["Subject"] for m in mailbox.messages]
    assert sorted(subjects) == sorted([*(f"Burst {i}" for i in range(40)), "After the sweep"])


def test_redis_down_at_commit_keeps_the_change_and_sends_later(pg_app, mailbox, staff, monkeypatch):
    agent = staff[0]
    monkeypatch.setitem(pg_app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # nobody listens there
    notify(
        "task_assigned", "while-redis-down", "Sent after Redis returns", "x", user_id=agent.user_id
    )
    db.session.commit()  # must not raise
    assert _status_counts()[("email", "pending")] == 1
    assert mailbox.messages == []

    conn = redis.Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)  # Redis is back
    enqueue("app.comms.jobs.dispatch_outbox", queue="notifications", retries=0)  # the periodic run
    SimpleWorker(["notifications"], connection=conn).work(burst=True)
    assert [m["Subject"] for m in mailbox.messages] == ["Sent after Redis returns"]
    conn.flushdb()


def test_the_same_event_never_notifies_twice(pg_app, mailbox, staff):
    agent = staff[0]
    for _ in range(3):
        notify("task_due", "task-due:9:2026-12-01", "Task due soon", "x", user_id=agent.user_id)
        db.session.commit()
    assert _status_counts() == {("email", "pending"): 1, ("in_app", "sent"): 1}
    dispatch_outbox()
    dispatch_outbox()
    assert len(mailbox.messages) == 1


def test_email_off_means_no_email_but_the_in_app_notification_stays(
    pg_app, pg_client, mailbox, staff
):
    agent = staff[0]
    db.session.add(NotificationPreference(user_id=agent.user_id, email_enabled=False))
    db.session.commit()
    notify("task_assigned", "quiet", "Quiet task", "x", user_id=agent.user_id)
    db.session.commit()
    dispatch_outbox()
    assert mailbox.to(agent.user.email) == []
    login(pg_client, agent.user.username)
    assert "Quiet task" in pg_client.get("/notifications/").get_data(as_text=True)


def test_daily_digest_groups_the_days_notifications_by_kind(pg_app, mailbox, staff):
    agent = staff[0]
    db.session.add(NotificationPreference(user_id=agent.user_id, digest="daily"))
    db.session.commit()
    _notify_many(agent.user_id, 2, kind="task_assigned", prefix="a")
    _notify_many(agent.user_id, 1, kind="follow_up_due", prefix="f")
    dispatch_outbox()
    assert mailbox.messages == []  # held for the digest
    assert send_digests("daily") == 1
    assert send_digests("daily") == 0  # nothing held any more: no second digest
    assert _status_counts()[("email", "pending")] == 1
    dispatch_outbox()
    (digest,) = mailbox.messages
    body = text_body(digest)
    assert "3 notification(s)" in digest["Subject"]
    assert "Follow up due (1)" in body and "Task assigned (2)" in body
    assert body.index("Follow up due") < body.index("Task assigned")
    assert "task_assigned number 1" in body


def test_an_unreachable_smtp_server_is_retried_with_backoff_then_failed(pg_app, staff, monkeypatch):
    agent = staff[0]
    monkeypatch.setitem(pg_app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(pg_app.config, "MAIL_PORT", 1)
    monkeypatch.setitem(pg_app.config, "CRM_OUTBOX_MAX_ATTEMPTS", 2)
    notify("task_assigned", "doomed", "Doomed", "x", user_id=agent.user_id)
    db.session.commit()
    dispatch_outbox()
    row = db.session.query(Notification).filter_by(channel="email").one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > row.created_at
    assert "SMTP 127.0.0.1:1" in row.last_error
    dispatch_outbox()  # not due yet: nothing happens
    db.session.refresh(row)
    assert row.attempts == 1
    row.next_attempt_at = row.created_at
    db.session.commit()
    dispatch_outbox()
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("failed", 2)
    assert (
        db.session.query(MessageLog).filter_by(notification_id=row.id, status="failed").count() == 2
    )


def test_sms_goes_through_the_http_gateway(pg_app, staff, monkeypatch):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(
                (
                    self.headers["Authorization"],
                    json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                )
            )
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "sms-1"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for key, value in {
            "SMS_GATEWAY": "http",
            "SMS_GATEWAY_URL": f"http://127.0.0.1:{server.server_port}/send",
            "SMS_GATEWAY_TOKEN": "secret-token",
        }.items():
            monkeypatch.setitem(pg_app.config, key, value)
        agent = staff[0]
        agent.phone = "+91 98765 43210"
        from app.org.services import prepare_staff_profile

        prepare_staff_profile(agent)
        db.session.add(
            NotificationPreference(user_id=agent.user_id, sms_enabled=True, email_enabled=False)
        )
        db.session.commit()
        notify(
            "task_due",
            "sms-1",
            "Task due",
            "Call Asha at 3pm",
            user_id=agent.user_id,
            channels=("sms",),
        )
        db.session.commit()
        dispatch_outbox()
    finally:
        server.shutdown()
    assert received == [
        ("Bearer secret-token", {"to": "+919876543210", "text": "Task due: Call Asha at 3pm"})
    ]
    assert db.session.query(MessageLog).filter_by(channel="sms", status="sent").count() == 1


def test_starting_the_scheduler_twice_schedules_each_periodic_job_once(rq_redis, pg_app):
    from app.core.schedule import PERIODIC_JOBS
    from app.core.scheduler import scheduled_runs

    env = {
        **os.environ,
        "REDIS_URL": REDIS_TEST_URL,
        "DATABASE_URL": pg_app.config["SQLALCHEMY_DATABASE_URI"],
        "CRM_INSTANCE_DIR": str(ROOT / "instance"),
    }
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "worker.py", "--schedule-only"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    runs = scheduled_runs(rq_redis)
    assert set(runs) == {job.name for job in PERIODIC_JOBS}
    assert all(len(ids) == 1 for ids in runs.values()), runs


def test_a_periodic_run_schedules_the_next_one_exactly_once(rq_redis, pg_app, mailbox, staff):
    from rq import Queue

    from app.core.scheduler import ensure_schedule, scheduled_runs

    ensure_schedule(rq_redis)
    # Run the dispatch job now, as the RQ scheduler would when its time comes.
    Queue("notifications", connection=rq_redis).enqueue(
        "app.core.scheduler.run_periodic", "dispatch-outbox"
    )
    SimpleWorker(["notifications"], connection=rq_redis).work(burst=True)
    ensure_schedule(rq_redis)
    assert len(scheduled_runs(rq_redis)["dispatch-outbox"]) == 1


def test_messages_show_on_the_related_records_page(pg_app, pg_client, mailbox, staff):
    from tests.support import make_lead

    agent = staff[0]
    admin = make_staff("Admin", make_branch())
    lead = make_lead(agent)
    db.session.commit()
    notify(
        "follow_up_due",
        f"follow-up:{lead.id}",
        "Follow up with the lead",
        "x",
        user_id=agent.user_id,
        related=lead,
    )
    db.session.commit()
    dispatch_outbox()
    login(pg_client, admin.user.username)
    page = pg_client.get(f"/leadview/show/{lead.id}").get_data(as_text=True)
    assert f"/messagelogview/record/lead/{lead.id}" in page
    listing = pg_client.get(
        f"/messagelogview/record/lead/{lead.id}", follow_redirects=True
    ).get_data(as_text=True)
    assert agent.user.email in listing and "Follow up with the lead" in listing


def test_admin_sees_failed_jobs_with_their_error_and_the_outbox(pg_app, pg_client, rq_redis, staff):
    admin = make_staff("Admin", make_branch())
    db.session.commit()
    enqueue("tests.jobs_for_tests.always_fails", queue="reports", retries=0)
    SimpleWorker(["reports"], connection=rq_redis).work(burst=True)
    login(pg_client, admin.user.username)
    page = pg_client.get("/jobs/").get_data(as_text=True)
    assert "failed 1" in page and "the price feed answered 503" in page
    agent_client = pg_app.test_client()
    login(agent_client, staff[0].user.username)
    assert agent_client.get("/jobs/").status_code == 403


def test_admin_sets_a_clients_preferences_and_email_then_goes_elsewhere(
    pg_app, pg_client, mailbox, staff
):
    from app.clients.models import Client
    from app.clients.services import prepare_client

    admin = make_staff("Admin", make_branch())
    client = prepare_client(
        Client(
            name="Quiet Client",
            email="quiet@client.example",
            phone="+91 98765 43219",
            branch_id=admin.branch_id,
        )
    )
    db.session.add(client)
    db.session.commit()
    login(pg_client, admin.user.username)
    response = pg_client.post(
        "/preferenceview/add",
        data={"client": str(client.id), "digest": "none", "sms_enabled": "y"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    pref = db.session.query(NotificationPreference).filter_by(client_id=client.id).one()
    assert (pref.email_enabled, pref.sms_enabled) == (False, True)
    notify(
        "invoice_due",
        "invoice-due:1",
        "Your invoice is due",
        "x",
        client_id=client.id,
        channels=("email", "sms"),
    )
    db.session.commit()
    dispatch_outbox()
    assert mailbox.to("quiet@client.example") == []
    assert (
        db.session.query(Notification).filter_by(recipient_client_id=client.id).one().channel
        == "sms"
    )


def test_staff_set_their_own_preferences(pg_app, pg_client, staff):
    agent = staff[0]
    login(pg_client, agent.user.username)
    pg_client.post("/my-preferences/", data={"in_app_enabled": "on", "digest": "daily"})
    pref = db.session.query(NotificationPreference).filter_by(user_id=agent.user_id).one()
    assert (pref.email_enabled, pref.in_app_enabled, pref.digest) == (False, True, "daily")
    page = pg_client.post(
        "/my-preferences/", data={"digest": "hourly"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "must be one of" in page
    db.session.expire_all()
    assert (
        db.session.query(NotificationPreference).filter_by(user_id=agent.user_id).one().digest
        == "daily"
    )


def test_admin_sends_a_failed_notification_again(pg_app, pg_client, staff):
    admin = make_staff("Admin", make_branch())
    notify(
        "task_assigned", "retry-me", "Retry me", "x", user_id=staff[0].user_id, channels=("email",)
    )
    db.session.commit()
    row = db.session.query(Notification).filter_by(idempotency_key="retry-me:email").one()
    row.status, row.attempts, row.last_error = "failed", 5, "SMTP down"
    db.session.commit()
    login(pg_client, admin.user.username)
    response = pg_client.post(
        "/outboxview/action_post",
        data={"action": "retry", "rowid": str(row.id)},
        follow_redirects=True,
    )
    assert "1 notification(s) queued again" in response.get_data(as_text=True)
    db.session.expire_all()
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
