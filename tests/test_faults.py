"""Faults the back office survives: PostgreSQL restarted under the app, Redis down, a worker
killed with SIGKILL in the middle of a job, S3 unreachable or the database failing after the file
was stored. Each server that a test stops is a private one (its own port and data directory)."""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta

import boto3
import pytest
import redis
from botocore.config import Config as BotoConfig
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.audit.models import AuditLog
from app.comms.models import Notification
from app.core.jobs import enqueue
from app.core.types import utcnow
from app.documents import services
from app.documents.models import Document
from app.extensions import db
from app.leads.models import Lead, LeadImport
from tests.fault_support import WorkerProcess, private_postgres, private_redis, wait_until
from tests.s3_server import aws_test_credentials, moto_s3_server
from tests.support import (
    api_token,
    build_app,
    count,
    login,
    make_branch,
    make_staff,
    prepare_schema,
)
from tests.test_documents import add_client, api_upload, pdf, screen_upload, use_storage
from tests.test_import import _csv

FORM_TIME = "%Y-%m-%d %H:%M:%S"


def _bearer(client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, username)}"}


# ---- PostgreSQL restarted while the app serves requests --------------------------------------


def test_after_a_postgres_restart_requests_succeed_and_nothing_committed_is_lost():
    with private_postgres() as server:
        app = build_app(server.url)
        prepare_schema(app)
        client = app.test_client()
        with app.app_context():
            agent = make_staff("Agent", make_branch("PGR"))
            db.session.commit()
            username = agent.user.username
        auth = _bearer(client, username)
        login(client, username)

        before = client.post(
            "/api/v1/lead/",
            json={"first_name": "Before", "last_name": "Restart", "email": "before@example.com"},
            headers=auth,
        )
        assert before.status_code == 201, before.json
        assert client.get("/leadview/list/").status_code == 200
        with app.app_context():  # the pool now holds connections the restart will cut
            assert db.engine.pool.checkedin() >= 1

        server.restart()

        # Every request after the restart succeeds: the pool tests a connection before use.
        for _ in range(3):
            page = client.get("/leadview/list/")
            assert page.status_code == 200
            assert "before@example.com" in page.get_data(as_text=True)
        after = client.post(
            "/api/v1/lead/",
            json={"first_name": "After", "last_name": "Restart", "email": "after@example.com"},
            headers=auth,
        )
        assert after.status_code == 201, after.json
        listed = client.get("/api/v1/lead/", headers=auth)
        assert listed.status_code == 200
        assert {row["email"] for row in listed.json["result"]} == {
            "before@example.com",
            "after@example.com",
        }
        with app.app_context():
            emails = set(db.session.scalars(select(Lead.email)))
            assert emails == {"before@example.com", "after@example.com"}
            db.session.remove()
            db.engine.dispose()


# ---- Redis down: screens work, notifications wait in the outbox ------------------------------


@pytest.fixture
def redis_server():
    with private_redis() as server:
        yield server


def test_with_redis_down_screens_work_and_notifications_are_sent_once_it_is_back(
    pg_app, pg_client, redis_server, mailbox, monkeypatch
):
    branch = make_branch("RDS")
    manager = make_staff("Manager", branch)
    agent = make_staff("Agent", branch)
    db.session.commit()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", redis_server.url)
    redis_server.stop()

    assert login(pg_client, manager.user.username).status_code == 302
    assert pg_client.get("/leadview/list/").status_code == 200
    created = pg_client.post(
        "/leadview/add",
        data={
            "first_name": "Asha",
            "last_name": "Redisless",
            "email": "asha.redisless@example.com",
            "source": "manual",
            "status": "new",
            "assigned_agent": str(agent.user_id),
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    assert db.session.scalars(select(Lead.email)).all() == ["asha.redisless@example.com"]
    task = pg_client.post(
        "/taskview/add",
        data={
            "title": "Call Asha while the queue is down",
            "due_at": (utcnow() + timedelta(days=1)).strftime(FORM_TIME),
            "priority": "high",
            "status": "open",
            "assignee": str(agent.user_id),
        },
    )
    assert task.status_code == 302, task.get_data(as_text=True)[:2000]
    assert pg_client.get("/taskview/list/").status_code == 200
    assert "Call Asha while the queue is down" in pg_client.get("/taskview/list/").get_data(
        as_text=True
    )
    db.session.expire_all()
    email = db.session.scalars(
        select(Notification).where(
            Notification.kind == "task_assigned", Notification.channel == "email"
        )
    ).one()
    assert email.status == "pending"  # waiting in the outbox
    assert mailbox.messages == []

    redis_server.start()  # Redis is back (empty: nothing was kept)
    worker = WorkerProcess(
        pg_app.config["SQLALCHEMY_DATABASE_URI"],
        redis_server.url,
        "notifications",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(mailbox.port),
    ).start()
    try:
        # The minute's periodic run of the outbox, as the scheduler enqueues it.
        enqueue("app.comms.jobs.dispatch_outbox", queue="notifications", retries=0)
        assert mailbox.wait_for(1, timeout=60), "nothing was sent once Redis was back"
        assert wait_until(lambda: _status_of(email.id) == "sent", timeout=30)
    finally:
        worker.stop()
    (message,) = mailbox.to(agent.user.email)
    assert "Call Asha while the queue is down" in message["Subject"]
    assert len(mailbox.messages) == 1


def _status_of(notification_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Notification, notification_id).status


# ---- a worker killed with SIGKILL in the middle of a job -------------------------------------


def _import_status(import_id: int) -> tuple[str, int]:
    db.session.expire_all()
    row = db.session.get(LeadImport, import_id)
    return row.status, row.processed_rows


def test_an_import_killed_mid_job_imports_each_row_exactly_once_after_a_restart(
    pg_app, pg_client, redis_server, monkeypatch
):
    agent = make_staff("Agent", make_branch("KIL"))
    db.session.commit()
    login(pg_client, agent.user.username)
    total = 4000
    data = _csv([[f"Kim{i}", "Killed", f"kim{i}@example.com", "", ""] for i in range(total)])
    uploaded = pg_client.post(
        "/leadimportview/upload",
        data={"file": (io.BytesIO(data), "leads.csv")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    import_id = int(uploaded.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert _import_status(import_id)[0] == "checked"  # checked inline (no Redis yet)

    monkeypatch.setitem(pg_app.config, "REDIS_URL", redis_server.url)
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    first = WorkerProcess(database, redis_server.url, "default").start()
    try:
        assert pg_client.post(f"/leadimportview/import/{import_id}").status_code == 302
        # The job has read the first rows inside its transaction: kill it there.
        assert wait_until(lambda: _import_status(import_id)[1] >= 500, timeout=60)
        first.kill_9()
    finally:
        first.stop()
    assert _import_status(import_id)[0] == "importing"
    assert count(Lead) == 0  # the killed transaction wrote nothing

    connection = redis.Redis.from_url(redis_server.url)
    second = WorkerProcess(database, redis_server.url, "default").start()
    try:
        # The worker's registry maintenance, once the dead worker's heartbeat has run out:
        # the abandoned job is handed back to the queue.
        StartedJobRegistry("default", connection=connection).cleanup(time.time() + 600)
        assert wait_until(lambda: _import_status(import_id)[0] == "imported", timeout=90), (
            _import_status(import_id)
        )
        # A duplicate run of the same job (a retry after all) finds the work done.
        again = Queue("default", connection=connection).enqueue(
            "app.core.jobs.run_job", "app.leads.imports.import_rows_job", import_id
        )
        assert wait_until(lambda: again.get_status(refresh=True) == "finished", timeout=60)
        assert again.return_value() is None  # nothing left to do
    finally:
        second.stop()
    db.session.expire_all()
    assert count(Lead) == total
    assert db.session.scalar(select(func.count(func.distinct(Lead.email)))) == total
    assert db.session.get(LeadImport, import_id).imported_rows == total
    events = db.session.scalars(
        select(AuditLog).where(
            AuditLog.action == "import",
            AuditLog.record_type == LeadImport.__tablename__,
            AuditLog.record_id == str(import_id),
        )
    ).all()
    assert len(events) == 1


# ---- S3 unreachable, or the database failing after the file was stored -----------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(app, moto_endpoint, monkeypatch):
    """Documents go to a fresh bucket on a real S3 endpoint; yields a boto3 client and the
    bucket's name, to look inside it as an operator would."""
    aws_test_credentials(monkeypatch)
    name = f"faults-{uuid.uuid4().hex[:12]}"
    use_storage(
        app, monkeypatch, STORAGE_BACKEND="s3", S3_BUCKET=name, S3_ENDPOINT_URL=moto_endpoint
    ).ensure_bucket()
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    yield s3, name


def _objects(s3_and_bucket) -> list[str]:
    s3, name = s3_and_bucket
    return [item["Key"] for item in s3.list_objects_v2(Bucket=name).get("Contents", [])]


@pytest.fixture
def owner(app):
    agent = make_staff("Agent", make_branch("DOC"))
    client = add_client(agent, "Asha Traders")
    db.session.commit()
    return agent.user.username, client.id


def test_s3_unreachable_during_an_upload_on_the_screen_says_so_and_keeps_no_row(
    app, client, owner, monkeypatch
):
    username, client_id = owner
    use_storage(
        app,
        monkeypatch,
        STORAGE_BACKEND="s3",
        S3_BUCKET="nowhere",
        S3_ENDPOINT_URL="http://127.0.0.1:1",  # nothing listens there
    )
    login(client, username)
    page = screen_upload(client, pdf(), "pan.pdf", client=str(client_id))
    assert page.status_code == 200
    assert "the file could not be stored" in page.get_data(as_text=True)
    assert count(Document) == 0


def test_two_uploads_taking_the_same_version_keep_one_row_and_one_file(
    app, client, owner, bucket, monkeypatch
):
    username, client_id = owner
    auth = _bearer(client, username)
    first = api_upload(client, auth, pdf("one"), "pan.pdf", client_id=str(client_id))
    assert first.status_code == 201, first.json
    assert len(_objects(bucket)) == 1
    # The second upload computed its version before the first committed: both are "v1".
    monkeypatch.setattr(services, "next_version", lambda owner, doc_type: 1)

    second = api_upload(client, auth, pdf("two"), "pan.pdf", client_id=str(client_id))
    assert second.status_code == 409, second.json
    assert "saved at the same moment" in second.json["message"]["file"][0]
    login(client, username)
    page = screen_upload(client, pdf("three"), "pan.pdf", client=str(client_id))
    assert "saved at the same moment" in page.get_data(as_text=True)

    assert count(Document) == 1
    (kept,) = _objects(bucket)  # the refused uploads' files were removed again
    assert kept == db.session.scalars(select(Document.storage_key)).one()


def test_a_database_failure_at_commit_leaves_no_stored_file_behind(
    app, client, owner, bucket, monkeypatch
):
    username, client_id = owner

    def database_fails(session, flush_context, instances):
        if any(isinstance(item, Document) for item in session.new):
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    event.listen(Session, "before_flush", database_fails)
    try:
        response = api_upload(
            client, _bearer(client, username), pdf(), "pan.pdf", client_id=str(client_id)
        )
        assert response.status_code == 500, response.json
    finally:
        event.remove(Session, "before_flush", database_fails)
    assert count(Document) == 0
    assert _objects(bucket) == []
