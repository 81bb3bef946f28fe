"""A 50,000-row export on PostgreSQL runs as a job on a real RQ worker (Redis), its progress
climbs to 100% while the page polls, and the file downloads and opens with pandas."""

from __future__ import annotations

import io
import re
import threading
import time

import pandas as pd
import pytest
import redis
from rq import Queue, SimpleWorker
from sqlalchemy import insert, select

from app.audit.models import AuditLog
from app.exports.models import ExportJob
from app.extensions import db
from app.leads.models import Lead
from tests.support import REDIS_TEST_URL, login, make_branch, make_lead, make_staff

ROWS = 50_000


@pytest.fixture
def rq_redis(pg_app, monkeypatch):
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        conn.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379. Run `make services`.")
    conn.flushdb()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    yield conn
    conn.flushdb()


class ProgressWatcher(threading.Thread):
    """Polls the progress endpoint as the export's page does, remembering what it saw."""

    def __init__(self, client, url: str) -> None:
        super().__init__(daemon=True)
        self.client, self.url = client, url
        self.seen: list[tuple[str, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            status = self.client.get(self.url).json
            self.seen.append((status["status"], status["percent"], status["processed_rows"]))
            if status["finished"]:
                return
            time.sleep(0.2)


def test_fifty_thousand_leads_export_as_a_job_with_progress_and_open_with_pandas(pg_app, rq_redis):
    branch = make_branch()
    agent = make_staff("Agent", branch)
    other = make_staff("Agent", branch)
    make_lead(other, first_name="Not", last_name="Mine")
    db.session.commit()
    db.session.execute(
        insert(Lead),
        [
            {
                "first_name": f"Lead{n:05d}",
                "last_name": "Bulk",
                "email": f"lead{n}@bulk.example",
                "phone": f"+9198{n:08d}",
                "source": "import",
                "status": "new",
                "score": n % 100,
                "assigned_agent_id": agent.user_id,
                "branch_id": branch.id,
            }
            for n in range(ROWS)
        ],
    )
    db.session.commit()

    client = pg_app.test_client()
    login(client, agent.user.username)
    response = client.get("/leadview/export/csv?_oc_LeadView=first_name&_od_LeadView=asc")
    assert response.status_code == 302
    job_id = int(re.search(r"/exports/(\d+)$", response.headers["Location"])[1])
    page = client.get(f"/exports/{job_id}").get_data(as_text=True)
    assert 'id="export-progress"' in page and 'aria-valuenow="0"' in page
    assert client.get(f"/exports/{job_id}/progress").json["status"] == "queued"
    assert Queue("reports", connection=rq_redis).count == 1

    watcher_client = pg_app.test_client()
    login(watcher_client, agent.user.username)
    watcher = ProgressWatcher(watcher_client, f"/exports/{job_id}/progress")
    watcher.start()
    started = time.monotonic()
    SimpleWorker(["reports"], connection=rq_redis).work(burst=True)
    elapsed = time.monotonic() - started
    watcher.join(timeout=30)
    watcher.stop.set()

    final = client.get(f"/exports/{job_id}/progress").json
    assert (final["status"], final["percent"], final["processed_rows"]) == ("done", 100, ROWS)
    assert final["total_rows"] == ROWS and final["download_url"]
    assert watcher.seen[-1][:2] == ("done", 100)
    climbing = [percent for status, percent, _ in watcher.seen if status == "running"]
    assert climbing and climbing == sorted(climbing), watcher.seen
    print(f"\n50,000-row CSV export on the worker: {elapsed:.1f} s; progress seen: {climbing}")

    download = client.get(final["download_url"])
    assert download.status_code == 200
    frame = pd.read_csv(io.BytesIO(download.get_data()), encoding="utf-8-sig")
    assert len(frame) == ROWS
    assert list(frame.columns[:4]) == ["First Name", "Last Name", "Email", "Phone"]
    assert (
        frame["First Name"].iloc[0] == "Lead00000" and frame["First Name"].iloc[-1] == "Lead49999"
    )
    assert "Not" not in set(frame["First Name"])  # another agent's lead
    assert db.session.get(ExportJob, job_id).size_bytes == len(download.get_data())
    events = db.session.scalars(
        select(AuditLog.action).where(AuditLog.actor_name == agent.user.username)
    ).all()
    assert "export" in events and "download" in events
