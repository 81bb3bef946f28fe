"""The audit log: field-level changes, masked identifiers, security events, a chain that shows
tampering, and the history of a record from its page."""

from __future__ import annotations

import json
import threading

import psycopg2
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.clients.models import Client
from app.clients.services import prepare_client
from app.extensions import db
from app.leads.models import Lead
from tests.support import (
    api_token,
    build_app,
    login,
    make_branch,
    make_lead,
    make_staff,
    postgres_reachable_or_fail,
    prepare_schema,
    temporary_postgres_database,
)


def _rows(record_type=None, record_id=None, action=None):
    """Audit rows of this test only: the log is append-only and outlives each test's data, and
    record ids are reused after the data is wiped."""
    query = select(AuditLog).where(AuditLog.seq > _START["seq"]).order_by(AuditLog.seq)
    if record_type:
        query = query.where(AuditLog.record_type == record_type)
    if record_id is not None:
        query = query.where(AuditLog.record_id == str(record_id))
    if action:
        query = query.where(AuditLog.action == action)
    return list(db.session.scalars(query))


_START = {"seq": 0}


@pytest.fixture(autouse=True)
def _audit_start(request):
    app_fixture = (
        "pg_app"
        if "pg_app" in request.fixturenames or "pg_client" in request.fixturenames
        else "app"
    )
    if "fresh_pg" in request.fixturenames:
        _START["seq"] = 0
        yield
        return
    request.getfixturevalue(app_fixture)
    _START["seq"] = db.session.scalar(select(func.coalesce(func.max(AuditLog.seq), 0)))
    yield


@pytest.fixture
def agent(app):
    profile = make_staff("Agent", make_branch())
    db.session.commit()
    return profile


def test_editing_a_leads_email_leaves_one_row_with_old_and_new(client, agent):
    lead = make_lead(agent, email="old@example.com")
    db.session.commit()
    token = api_token(client, agent.user.username)
    response = client.put(
        f"/api/v1/lead/{lead.id}",
        json={"email": "New@Example.com"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    updates = _rows("lead", lead.id, "update")
    assert len(updates) == 1
    changes = json.loads(updates[0].changes)
    assert changes["email"] == ["old@example.com", "new@example.com"]
    assert updates[0].actor_name == agent.user.username
    assert updates[0].client_addr == "127.0.0.1"
    assert [r.action for r in _rows("lead", lead.id)] == ["create", "update"]


def test_editing_a_pan_leaves_both_values_masked(app, agent):
    client_record = prepare_client(
        Client(name="Asha Verma", pan="ABCPE1234F", branch_id=agent.branch_id)
    )
    db.session.add(client_record)
    db.session.commit()
    client_record.pan = "XYZPK9876Q"
    prepare_client(client_record)
    db.session.commit()
    (update,) = _rows("client", client_record.id, "update")
    changes = json.loads(update.changes)
    assert changes["pan"] == ["ABCPXXXX4F", "XYZPXXXX6Q"]
    assert "ABCPE1234F" not in update.changes and "XYZPK9876Q" not in update.changes
    assert changes["pan_hash"] == ["********", "********"]
    (create,) = _rows("client", client_record.id, "create")
    assert "ABCPE1234F" not in create.changes


def test_deleting_a_record_is_recorded_with_its_last_values(app, agent):
    lead = make_lead(agent, first_name="Gone")
    db.session.commit()
    lead_id = lead.id
    db.session.delete(lead)
    db.session.commit()
    (deleted,) = _rows("lead", lead_id, "delete")
    assert json.loads(deleted.changes)["first_name"] == ["Gone", None]


def test_a_change_that_rolls_back_leaves_no_audit_row(app, agent):
    before = len(_rows("lead"))
    make_lead(agent)
    db.session.rollback()
    assert len(_rows("lead")) == before


def test_logins_failures_logouts_and_denials_are_recorded(client, agent):
    username = agent.user.username
    client.post("/login/", data={"username": username, "password": "wrong-password"})
    login(client, username)
    client.get("/users/list/")  # Admin only
    client.get("/logout/")
    events = [(r.action, r.actor_name) for r in _rows() if r.action != "create"]
    assert ("login_failed", username) in events
    assert ("login", username) in events
    assert ("logout", username) in events
    denial = _rows(action="permission_denied")[-1]
    assert denial.actor_name == username and "UserDBModelView" in denial.detail


def test_refused_api_input_is_recorded(client, agent):
    token = api_token(client, agent.user.username)
    response = client.post(
        "/api/v1/lead/",
        json={"first_name": "A", "last_name": "B", "phone": "12"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    refused = _rows(action="rejected")[-1]
    assert refused.record_type == "lead" and "phone" in refused.detail


def test_history_of_a_record_from_its_page(client, app):
    admin = make_staff("Admin", make_branch())
    lead = make_lead(admin, first_name="Hist")
    db.session.commit()
    login(client, admin.user.username)
    page = client.get(f"/leadview/show/{lead.id}").get_data(as_text=True)
    assert f"/auditlogview/record/lead/{lead.id}" in page
    history = client.get(f"/auditlogview/record/lead/{lead.id}", follow_redirects=True)
    assert history.status_code == 200
    text = history.get_data(as_text=True)
    assert "Create" in text


def test_agents_do_not_see_the_audit_log_or_its_history_link(client, agent):
    lead = make_lead(agent)
    db.session.commit()
    login(client, agent.user.username)
    assert "/auditlogview/record/" not in client.get(f"/leadview/show/{lead.id}").get_data(
        as_text=True
    )
    assert client.get("/auditlogview/list/").status_code == 403


def test_audit_verify_passes_on_an_intact_chain(app, agent):
    make_lead(agent)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["crm", "audit-verify"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


# ---- tampering and concurrency, on a PostgreSQL database of their own ----


@pytest.fixture
def fresh_pg():
    postgres_reachable_or_fail()
    with temporary_postgres_database() as url:
        app = build_app(url)
        prepare_schema(app)
        yield app, url
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _seed_rows(app, n=5):
    with app.app_context():
        agent = make_staff("Agent", make_branch())
        for _ in range(n):
            make_lead(agent)
        db.session.commit()


def _as_superuser(url, sql):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # a DBA bypassing the trigger
        cur.execute(sql)


def test_the_database_refuses_to_update_or_delete_audit_rows(fresh_pg):
    app, url = fresh_pg
    _seed_rows(app, 1)
    for sql in ("UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            with pytest.raises(psycopg2.Error, match="append-only"):
                cur.execute(sql)


def test_an_altered_row_is_named_by_audit_verify(fresh_pg):
    app, url = fresh_pg
    _seed_rows(app)
    _as_superuser(url, "UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 4")
    with app.app_context():
        target = db.session.scalar(select(AuditLog.id).where(AuditLog.seq == 4))
    result = app.test_cli_runner().invoke(args=["crm", "audit-verify"])
    assert result.exit_code == 1
    assert f"row id {target} (seq 4)" in result.output and "altered" in result.output


def test_a_deleted_row_is_caught(fresh_pg):
    app, url = fresh_pg
    _seed_rows(app)
    _as_superuser(url, "DELETE FROM audit_log WHERE seq = 3")
    result = app.test_cli_runner().invoke(args=["crm", "audit-verify"])
    assert result.exit_code == 1
    assert "(seq 4)" in result.output and "removed" in result.output


def test_twenty_concurrent_writers_leave_an_intact_chain(fresh_pg):
    app, _ = fresh_pg
    with app.app_context():
        agent = make_staff("Agent", make_branch())
        db.session.commit()
        agent_id, branch_id = agent.user_id, agent.branch_id
    errors = []
    start = threading.Barrier(20)

    def write(n):
        try:
            with app.app_context():
                start.wait()
                for i in range(3):
                    make_lead_in_thread(n, i, agent_id, branch_id)
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with app.app_context():
        seqs = list(db.session.scalars(select(AuditLog.seq).order_by(AuditLog.seq)))
        assert db.session.query(Lead).count() == 60
    assert seqs == list(range(1, len(seqs) + 1))
    result = app.test_cli_runner().invoke(args=["crm", "audit-verify"])
    assert result.exit_code == 0, result.output


def make_lead_in_thread(n, i, agent_id, branch_id):
    from app.leads.services import create_lead

    create_lead(
        first_name=f"T{n}",
        last_name=f"L{i}",
        email=f"t{n}.{i}@example.com",
        assigned_agent_id=agent_id,
        branch_id=branch_id,
    )


def test_logout_without_a_session_goes_to_the_login_page(client):
    before = len(_rows(action="logout"))
    response = client.get("/logout/")
    assert response.status_code == 302  # an expired session or a second tab: no error page
    assert len(_rows(action="logout")) == before
