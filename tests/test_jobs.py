"""The job facade: inline without Redis, through RQ and a worker on the real Redis server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker

from app.core.jobs import enqueue
from app.extensions import db
from app.leads.models import Interaction, Lead
from tests.support import REDIS_TEST_URL, make_branch, make_lead, make_staff

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lead_id(app):
    lead = make_lead(make_staff("Agent", make_branch()))
    db.session.commit()
    return lead.id


@pytest.fixture
def redis_conn():
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        conn.ping()
    except redis.ConnectionError:
        pytest.fail(
            "Redis is not reachable on 127.0.0.1:6379. Run `make services` (apt-get install -y redis-server)."
        )
    conn.flushdb()
    yield conn
    conn.flushdb()


def test_without_redis_a_job_runs_inline(app, lead_id):
    assert app.config["REDIS_URL"] is None
    job = enqueue(
        "tests.jobs_for_tests.note_on_lead", lead_id, "called back", queue="notifications"
    )
    assert job.ran_inline
    assert db.session.get(Interaction, job.result).body == "called back"


def test_with_redis_a_job_waits_for_the_worker(app, lead_id, redis_conn, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_TEST_URL)
    job = enqueue("tests.jobs_for_tests.note_on_lead", lead_id, "queued note", queue="default")
    assert not job.ran_inline
    assert Queue("default", connection=redis_conn).count == 1
    assert db.session.query(Interaction).count() == 0

    SimpleWorker(["default"], connection=redis_conn).work(burst=True)
    db.session.expire_all()
    notes = [i.body for i in db.session.get(Lead, lead_id).interactions]
    assert notes == ["queued note"]


def test_unknown_queue_is_refused(app, lead_id):
    with pytest.raises(ValueError, match="unknown queue"):
        enqueue("tests.jobs_for_tests.note_on_lead", lead_id, "x", queue="nowhere")


def test_worker_without_redis_explains_that_jobs_run_inline():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["CRM_INSTANCE_DIR"] = str(ROOT / "instance")
    result = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "jobs run inline" in result.stdout
