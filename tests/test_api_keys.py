"""API keys: Admin creates one for a service user; it acts with that user's role and row
scoping; revoked and made-up keys get 401; creation, revocation and refusals are audited."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.audit.models import AuditLog
from app.extensions import db
from app.leads.models import Lead
from tests.support import api_token, make_branch, make_lead, make_staff


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _audit_rows(record_type: str, action: str) -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.record_type == record_type, AuditLog.action == action)
            .order_by(AuditLog.seq)
        )
    )


def _desk():
    branch = make_branch()
    make_staff("Admin", branch, "keys_admin")
    agent = make_staff("Agent", branch, "svc_agent")
    other = make_staff("Agent", branch, "keys_other_agent")
    mine = make_lead(agent, first_name="Mine")
    theirs = make_lead(other, first_name="Theirs")
    db.session.commit()
    return agent, mine, theirs


def test_a_key_acts_with_its_users_role_and_scope_until_revoked(client, app):
    agent, mine, theirs = _desk()
    admin = _bearer(api_token(client, "keys_admin"))
    created = client.post(
        "/api/v1/apikey/", json={"username": "svc_agent", "name": "lead sync"}, headers=admin
    )
    assert created.status_code == 201, created.json
    key = created.json["key"]
    assert key.startswith("fincrm_") and created.json["username"] == "svc_agent"

    listed = client.get("/api/v1/lead/", headers=_bearer(key))
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json["result"]] == [mine.id]
    assert client.get(f"/api/v1/lead/{theirs.id}", headers=_bearer(key)).status_code == 404
    assert client.get("/api/v1/journalentry/", headers=_bearer(key)).status_code == 403

    made = client.post(
        "/api/v1/lead/",
        json={"first_name": "Via", "last_name": "Key", "email": "via.key@test.example"},
        headers=_bearer(key),
    )
    assert made.status_code == 201, made.json
    lead = db.session.get(Lead, made.json["id"])
    assert lead.assigned_agent_id == agent.user_id and lead.source == "api"
    # The audit log outlives each test's wipe and SQLite reuses ids: the newest row is this one.
    created_row = [row for row in _audit_rows("lead", "create") if row.record_id == str(lead.id)][
        -1
    ]
    assert created_row.actor_name == "svc_agent"

    revoked = client.delete(f"/api/v1/apikey/{created.json['uuid']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json["active"] is False
    refused = client.get("/api/v1/lead/", headers=_bearer(key))
    assert refused.status_code == 401
    assert client.delete(f"/api/v1/apikey/{created.json['uuid']}", headers=admin).status_code == 409

    creation = _audit_rows("ab_api_key", "create")[-1]
    assert creation.actor_name == "keys_admin"
    changes = json.loads(creation.changes)
    assert changes["name"] == [None, "lead sync"]
    assert changes["user_id"] == [None, agent.user_id]
    assert changes["key_hash"] == [None, "********"]
    assert key not in creation.changes
    updates = [
        row for row in _audit_rows("ab_api_key", "update") if row.record_id == creation.record_id
    ]
    assert [list(json.loads(row.changes)) for row in updates] == [["revoked_on"]]
    assert updates[0].actor_name == "keys_admin"
    failed = [row for row in _audit_rows_none("login_failed") if "API key" in (row.detail or "")]
    assert failed and failed[-1].actor_name == "(API key)" and key[:12] in failed[-1].detail


def _audit_rows_none(action: str) -> list[AuditLog]:
    return list(
        db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq))
    )


def test_a_made_up_key_gets_401_and_is_audited(client, app):
    _desk()
    for token in ("fincrm_" + "x" * 43, "fincrm_", "not-a-jwt-and-not-a-key"):
        answer = client.get("/api/v1/lead/", headers=_bearer(token))
        assert answer.status_code == 401, (token, answer.status_code)
    refusals = [row for row in _audit_rows_none("login_failed") if row.actor_name == "(API key)"]
    assert any("fincrm_xxxxx" in row.detail for row in refusals)


def test_only_admin_manages_keys_and_bad_input_is_named(client, app):
    branch = make_branch()
    make_staff("Admin", branch, "keys_admin2")
    make_staff("Manager", branch, "keys_manager")
    db.session.commit()
    manager = _bearer(api_token(client, "keys_manager"))
    assert (
        client.post(
            "/api/v1/apikey/", json={"username": "keys_manager", "name": "x"}, headers=manager
        ).status_code
        == 403
    )
    assert client.get("/api/v1/apikey/", headers=manager).status_code == 403
    admin = _bearer(api_token(client, "keys_admin2"))
    for body, field in (
        ({"name": "no user"}, "username"),
        ({"username": "nobody-here", "name": "x"}, "username"),
        ({"username": "keys_manager"}, "name"),
        ({"username": "keys_manager", "name": "x", "expires_on": "2001-01-01"}, "expires_on"),
        ({"username": "keys_manager", "name": "x", "expires_on": "soon"}, "expires_on"),
    ):
        answer = client.post("/api/v1/apikey/", json=body, headers=admin)
        assert answer.status_code == 422, (body, answer.json)
        assert field in answer.json["message"], (body, answer.json)
    assert client.get("/api/v1/apikey/", headers=admin).json["result"] == []
    assert client.delete("/api/v1/apikey/not-a-key", headers=admin).status_code == 404


def test_the_command_line_creates_and_revokes_a_key(client, app):
    _agent, mine, _theirs = _desk()
    runner = app.test_cli_runner()
    created = runner.invoke(args=["crm", "api-key", "create", "--user", "svc_agent"])
    assert created.exit_code == 0, created.output
    key = next(line for line in created.output.splitlines() if line.startswith("fincrm_"))
    answer = client.get("/api/v1/lead/", headers=_bearer(key))
    assert [row["id"] for row in answer.json["result"]] == [mine.id]

    listed = runner.invoke(args=["crm", "api-key", "list"])
    key_uuid = listed.output.split()[0]
    assert "svc_agent" in listed.output and "active" in listed.output
    revoked = runner.invoke(args=["crm", "api-key", "revoke", key_uuid])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/v1/lead/", headers=_bearer(key)).status_code == 401
    unknown = runner.invoke(args=["crm", "api-key", "create", "--user", "nobody-here"])
    assert unknown.exit_code != 0 and "nobody-here" in unknown.output
    creation = _audit_rows("ab_api_key", "create")[-1]
    assert creation.actor_name == "system"
    assert json.loads(creation.changes)["name"] == [None, "svc_agent API key"]


def test_fabs_own_key_api_is_gone_so_every_key_is_made_through_the_audited_one(client, app):
    from flask_appbuilder.security.sqla.models import ApiKey

    _desk()
    admin = _bearer(api_token(client, "keys_admin"))
    for method, path in (
        ("post", "/api/v1/security/api_keys/"),
        ("get", "/api/v1/security/api_keys/"),
    ):
        answer = getattr(client, method)(path, json={"name": "side door"}, headers=admin)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert db.session.scalars(select(ApiKey)).all() == []
    audited = len(_audit_rows("ab_api_key", "create"))
    made = client.post(
        "/api/v1/apikey/", json={"username": "svc_agent", "name": "lead sync"}, headers=admin
    )
    assert made.status_code == 201
    assert len(db.session.scalars(select(ApiKey)).all()) == 1
    assert len(_audit_rows("ab_api_key", "create")) == audited + 1  # made the audited way
