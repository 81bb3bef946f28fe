"""Lead import through the screen and the API: the issue's 1,000-row file (report names exactly
the 5 bad rows; valid-only imports 995; a re-import imports 0 and reports 1,000 duplicates),
discarding, bad files, who sees whose import, progress, the re-check at import time, and the
RQ path with a real worker."""

from __future__ import annotations

import io
import re

import pytest
import redis
from rq import Queue, SimpleWorker
from sqlalchemy import create_engine, select, text

from app.audit.models import AuditLog
from app.extensions import db
from app.leads import imports
from app.leads.models import Lead, LeadImport
from tests.support import (
    REDIS_TEST_URL,
    api_token,
    count,
    login,
    make_branch,
    make_lead,
    make_staff,
)
from tests.test_import import BAD_ROWS, DUPLICATE_ROWS, _csv, thousand_rows_csv

ISSUE_ROWS = {row for row, _ in BAD_ROWS | DUPLICATE_ROWS}


@pytest.fixture
def world(app):
    branch = make_branch()
    agent = make_staff("Agent", branch)
    existing = make_lead(agent, email="existing@example.com", phone=None)
    db.session.commit()
    return agent, existing


def _upload(client, data: bytes, name: str = "leads.csv"):
    return client.post(
        "/leadimportview/upload",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _rows_named(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-row="(\d+)"', page)}


def _text(page: str) -> str:
    """The page as a reader sees it: no tags, single spaces."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split()).replace(" .", ".")


def _import_id(response) -> int:
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


# ---- the screen ------------------------------------------------------------------------------


def test_the_issue_file_through_the_screen(client, world):
    agent, existing = world
    login(client, agent.user.username)

    uploaded = _upload(client, thousand_rows_csv())
    assert uploaded.status_code == 302
    import_id = _import_id(uploaded)
    page = client.get(f"/leadimportview/show/{import_id}").get_data(as_text=True)
    assert "1,000 rows: 995 valid, 3 invalid, 2 duplicates." in _text(page)
    assert _rows_named(page) == ISSUE_ROWS
    assert f'href="/leadview/show/{existing.id}"' in page  # row 102 links to the existing lead
    assert "repeats row 152 of this file" in page
    assert "Import the 995 valid rows" in page and "Import nothing" in page
    assert count(Lead) == 1  # nothing imported before the user chooses

    done = client.post(f"/leadimportview/import/{import_id}", follow_redirects=True)
    assert "2 duplicates; 995 imported." in _text(done.get_data(as_text=True))
    assert count(Lead) == 996
    assert set(db.session.scalars(select(Lead.lead_import_id).where(Lead.id != existing.id))) == {
        import_id
    }

    again = _upload(client, thousand_rows_csv())
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "1,000 rows: 0 valid, 0 invalid, 1,000 duplicates." in _text(page)
    assert _rows_named(page) == set(range(2, 1002))
    client.post(f"/leadimportview/import/{_import_id(again)}")
    assert db.session.get(LeadImport, _import_id(again)).imported_rows == 0
    assert count(Lead) == 996


def test_import_nothing_imports_nothing_and_cannot_be_undone(client, world):
    agent, _ = world
    login(client, agent.user.username)
    import_id = _import_id(_upload(client, thousand_rows_csv()))
    page = client.post(f"/leadimportview/discard/{import_id}", follow_redirects=True)
    assert "Import discarded: nothing was imported." in page.get_data(as_text=True)
    assert count(Lead) == 1
    refused = client.post(f"/leadimportview/import/{import_id}", follow_redirects=True)
    assert "only a checked import can be imported" in refused.get_data(as_text=True)
    assert count(Lead) == 1
    assert db.session.get(LeadImport, import_id).content is None  # the file is not kept


@pytest.mark.parametrize(
    "name, data, message",
    [
        (
            "leads.csv",
            "first_name,last_name,email\nJosé,Núñez,j@example.com\n".encode("latin-1"),
            "is not UTF-8 text",
        ),
        (
            "leads.xlsx",
            b"first_name,last_name,email\nA,B,a@example.com\n",
            "is named .xlsx but is not an Excel workbook",
        ),
        ("leads.xlsx", b"PK\x03\x04 not really a zip", "is not a readable XLSX workbook"),
        ("leads.csv", b"first_name,email\nA,a@example.com\n", "has no column last_name"),
        ("leads.txt", b"first_name,last_name\nA,B\n", "must be a .csv"),
        ("leads.csv", b"", "is empty"),
        ("leads.csv", b"first_name,last_name,email\n", "has a header but no rows"),
    ],
)
def test_a_bad_file_is_refused_clearly_and_nothing_is_kept(client, world, name, data, message):
    agent, _ = world
    login(client, agent.user.username)
    response = _upload(client, data, name)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(LeadImport) == 0 and count(Lead) == 1


def test_a_file_over_the_size_limit_is_refused(client, world, monkeypatch):
    agent, _ = world
    monkeypatch.setitem(client.application.config, "CRM_MAX_IMPORT_BYTES", 100)
    login(client, agent.user.username)
    response = _upload(client, thousand_rows_csv())
    assert response.status_code == 422
    assert "the limit is 100 bytes" in response.get_data(as_text=True)
    assert count(LeadImport) == 0


def test_another_agent_cannot_see_or_act_on_an_import(app, world):
    agent, _ = world
    other = make_staff("Agent", agent.branch)
    manager = make_staff("Manager", agent.branch)
    elsewhere = make_staff("Manager", make_branch())
    db.session.commit()
    owner = app.test_client()
    login(owner, agent.user.username)
    import_id = _import_id(_upload(owner, thousand_rows_csv()))

    intruder = app.test_client()
    login(intruder, other.user.username)
    assert intruder.get(f"/leadimportview/show/{import_id}").status_code == 404
    assert intruder.get(f"/leadimportview/progress/{import_id}").status_code == 404
    assert intruder.post(f"/leadimportview/import/{import_id}").status_code == 404
    assert intruder.post(f"/leadimportview/discard/{import_id}").status_code == 404
    assert "leads.csv" not in intruder.get("/leadimportview/list/").get_data(as_text=True)
    token = api_token(app.test_client(), other.user.username)
    headers = {"Authorization": f"Bearer {token}"}
    assert intruder.get(f"/api/v1/leadimport/{import_id}", headers=headers).status_code == 404
    assert (
        intruder.post(f"/api/v1/leadimport/{import_id}/import", headers=headers).status_code == 404
    )
    assert db.session.get(LeadImport, import_id).status == "checked"

    for staff, sees in ((manager, True), (elsewhere, False)):
        viewer = app.test_client()
        login(viewer, staff.user.username)
        listed = viewer.get("/leadimportview/list/").get_data(as_text=True)
        assert ("leads.csv" in listed) is sees
    assert count(Lead) == 1


# ---- the API (PostgreSQL) --------------------------------------------------------------------


@pytest.fixture
def pg_world(pg_app):
    agent = make_staff("Agent", make_branch())
    existing = make_lead(agent, email="existing@example.com", phone=None)
    db.session.commit()
    return agent, existing


def _api_upload(client, headers, data: bytes, name: str = "leads.csv"):
    return client.post(
        "/api/v1/leadimport/",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=headers,
    )


def test_the_issue_file_through_the_api(pg_client, pg_world):
    agent, existing = pg_world
    headers = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}

    accepted = _api_upload(pg_client, headers, thousand_rows_csv())
    assert accepted.status_code == 202, accepted.json
    import_id = accepted.json["id"]
    report = pg_client.get(f"/api/v1/leadimport/{import_id}", headers=headers).json
    assert report["status"] == "checked"
    assert (report["processed_rows"], report["total_rows"]) == (1000, 1000)
    assert (report["valid_rows"], report["invalid_rows"], report["duplicate_rows"]) == (995, 3, 2)
    assert {(p["row"], p["field"]) for p in report["problems"]} == BAD_ROWS | DUPLICATE_ROWS
    row_102 = next(p for p in report["problems"] if p["row"] == 102)
    assert row_102["duplicate"] and row_102["existing"] == {
        "type": "lead",
        "id": existing.id,
        "url": f"/leadview/show/{existing.id}",
    }

    started = pg_client.post(f"/api/v1/leadimport/{import_id}/import", headers=headers)
    assert started.status_code == 202
    done = pg_client.get(f"/api/v1/leadimport/{import_id}", headers=headers).json
    assert (done["status"], done["imported_rows"]) == ("imported", 995)
    assert count(Lead) == 996
    twice = pg_client.post(f"/api/v1/leadimport/{import_id}/import", headers=headers)
    assert twice.status_code == 409 and count(Lead) == 996

    again = _api_upload(pg_client, headers, thousand_rows_csv()).json["id"]
    report = pg_client.get(f"/api/v1/leadimport/{again}", headers=headers).json
    assert (report["valid_rows"], report["duplicate_rows"]) == (0, 1000)
    pg_client.post(f"/api/v1/leadimport/{again}/import", headers=headers)
    assert pg_client.get(f"/api/v1/leadimport/{again}", headers=headers).json["imported_rows"] == 0
    assert count(Lead) == 996

    event = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "import", AuditLog.record_id == str(import_id))
    ).one()
    assert event.actor_name == agent.user.username
    assert event.detail == (
        "leads.csv: 995 lead(s) imported of 1000 rows (3 invalid, 2 duplicates)"
    )


def test_api_discard_and_bad_input(pg_client, pg_world):
    agent, _ = pg_world
    headers = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    no_file = pg_client.post("/api/v1/leadimport/", json={}, headers=headers)
    assert no_file.status_code == 400 and "file" in no_file.json["message"]
    fake = _api_upload(pg_client, headers, b"hello", "leads.xlsx")
    assert fake.status_code == 422
    assert fake.json["message"] == {"file": ["is named .xlsx but is not an Excel workbook."]}
    assert count(LeadImport) == 0

    import_id = _api_upload(pg_client, headers, thousand_rows_csv()).json["id"]
    discarded = pg_client.post(f"/api/v1/leadimport/{import_id}/discard", headers=headers)
    assert discarded.status_code == 200 and discarded.json["status"] == "discarded"
    refused = pg_client.post(f"/api/v1/leadimport/{import_id}/import", headers=headers)
    assert refused.status_code == 409
    assert count(Lead) == 1


def test_a_session_caller_must_send_the_csrf_token(pg_app, pg_world, monkeypatch):
    agent, _ = pg_world
    client = pg_app.test_client()
    login(client, agent.user.username)
    monkeypatch.setitem(pg_app.config, "WTF_CSRF_ENABLED", True)
    forged = _api_upload(client, {}, thousand_rows_csv())
    assert forged.status_code == 400 and "CSRF" in forged.json["message"]
    assert count(LeadImport) == 0


def test_a_row_that_became_a_duplicate_since_the_check_stops_the_import(pg_client, pg_world):
    agent, _ = pg_world
    headers = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    import_id = _api_upload(pg_client, headers, thousand_rows_csv()).json["id"]
    # Meanwhile someone enters row 500's person by hand.
    late = make_lead(agent, email="person498@example.com", phone=None)
    db.session.commit()

    pg_client.post(f"/api/v1/leadimport/{import_id}/import", headers=headers)
    report = pg_client.get(f"/api/v1/leadimport/{import_id}", headers=headers).json
    assert report["status"] == "checked"
    assert "1 row(s) changed since the check" in report["message"]
    assert (report["valid_rows"], report["duplicate_rows"]) == (994, 3)
    row_500 = next(p for p in report["problems"] if p["row"] == 500)
    assert row_500["existing"]["id"] == late.id
    assert count(Lead) == 2  # nothing imported

    pg_client.post(f"/api/v1/leadimport/{import_id}/import", headers=headers)
    assert count(Lead) == 996  # the user read the new report and imported the 994


def _checked(agent) -> LeadImport:
    """The issue's file uploaded and checked as ``agent``, the user about to import it."""
    lead_import = imports.upload_import("leads.csv", thousand_rows_csv(), _actor(agent))
    db.session.commit()
    import_id = lead_import.id
    assert imports.check_import_job(import_id) == "checked"
    imports.request_import(import_id)
    db.session.commit()
    return db.session.get(LeadImport, import_id)


def test_the_import_writes_the_rows_exactly_as_the_check_judged_them(app, world):
    agent, _ = world
    lead_import = _checked(agent)
    assert imports.import_rows_job(lead_import.id) == "imported"
    leads = {lead.email: lead for lead in db.session.scalars(select(Lead))}
    assert len(leads) == 996
    first = leads["person0@example.com"]
    assert (first.phone, first.first_name, first.source, first.status) == (
        "+919000000000",
        "First0",
        "import",
        "new",
    )
    assert first.branch_id == agent.branch_id and first.assigned_agent_id == agent.user_id
    assert first.score == 15 and "source is import" in first.score_breakdown
    # the file and what the check kept of it are gone once the leads are in
    kept = db.session.execute(
        text("SELECT content, checked_rows FROM lead_import WHERE id = :id"),
        {"id": lead_import.id},
    ).one()
    assert kept == (None, None)


def test_an_uploader_moved_to_another_branch_imports_into_their_new_branch(app, world):
    agent, _ = world
    lead_import = _checked(agent)
    elsewhere = make_branch()
    agent.branch_id = elsewhere.id
    db.session.commit()
    assert imports.import_rows_job(lead_import.id) == "imported"
    branches = set(db.session.scalars(select(Lead.branch_id).where(Lead.source == "import")))
    assert branches == {elsewhere.id}


def test_an_unreadable_kept_check_falls_back_to_checking_every_row(app, world):
    agent, _ = world
    lead_import = _checked(agent)
    lead_import.checked_rows = b"not what the check wrote"
    db.session.commit()
    assert imports.import_rows_job(lead_import.id) == "imported"
    assert count(Lead) == 996


def test_the_progress_bar_sees_rows_counted_while_the_check_runs(pg_app, pg_world, monkeypatch):
    agent, _ = pg_world
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 200)
    lead_import = imports.upload_import("big.csv", thousand_rows_csv(), _actor(agent))
    db.session.commit()
    outside = create_engine(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    seen = []

    def look(rows):
        with outside.connect() as connection:
            seen.append(
                connection.scalar(
                    text("SELECT processed_rows FROM lead_import WHERE id = :id"),
                    {"id": lead_import.id},
                )
            )

    imports.check_import_job(lead_import.id, progress=look)
    outside.dispose()
    # what another connection (the polling screen) saw while the check ran
    assert seen == [0, 500]
    client = pg_app.test_client()
    login(client, agent.user.username)
    status = client.get(f"/leadimportview/progress/{lead_import.id}").json
    assert (status["processed_rows"], status["total_rows"], status["percent"]) == (1000, 1000, 100)
    assert status["finished"] is True


def _actor(staff):
    from app.security.scoping import actor_for_user

    return actor_for_user(staff.user_id)


# ---- with Redis: a real RQ worker runs the check and the import ------------------------------


@pytest.fixture
def rq_redis(pg_app, monkeypatch):
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    yield conn
    conn.flushdb()


def test_with_redis_the_worker_checks_and_imports_while_the_page_shows_progress(
    pg_app, pg_world, rq_redis
):
    agent, _ = pg_world
    client = pg_app.test_client()
    login(client, agent.user.username)
    rows = [[f"Ada{i}", "Lovelace", f"ada{i}@example.com", ""] for i in range(30)]
    rows[4][2] = "nope"
    data = _csv([r + [""] for r in rows])
    uploaded = _upload(client, data)
    import_id = _import_id(uploaded)
    page = client.get(uploaded.headers["Location"]).get_data(as_text=True)
    assert 'id="import-progress"' in page and "Checking rows" in page
    status = client.get(f"/leadimportview/progress/{import_id}").json
    assert (status["status"], status["processed_rows"], status["total_rows"]) == ("uploaded", 0, 30)
    assert Queue("default", connection=rq_redis).count == 1

    SimpleWorker(["default"], connection=rq_redis).work(burst=True)
    db.session.expire_all()
    page = client.get(uploaded.headers["Location"]).get_data(as_text=True)
    assert _rows_named(page) == {6} and "Import the 29 valid rows" in page

    client.post(f"/leadimportview/import/{import_id}")
    assert client.get(f"/leadimportview/progress/{import_id}").json["status"] == "importing"
    assert count(Lead) == 1
    SimpleWorker(["default"], connection=rq_redis).work(burst=True)
    db.session.expire_all()
    assert client.get(f"/leadimportview/progress/{import_id}").json["imported_rows"] == 29
    assert count(Lead) == 30
