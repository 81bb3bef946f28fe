"""Identifiers encrypted at rest, found by keyed hash, shown masked, revealed only when allowed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from app.audit.models import AuditLog
from app.clients.models import Client
from app.clients.services import find_clients_by_identifier, prepare_client
from app.core.crypto import DecryptionError
from app.core.masking import mask_aadhaar, mask_account, mask_pan
from app.extensions import db
from tests.support import api_token, login, make_branch, make_staff

PAN, AADHAAR, TFN = "ABCPE1234F", "234123412346", "123456782"


def _client(branch_id, rm_id=None, **fields):
    record = prepare_client(
        Client(
            name=fields.pop("name", "Asha Verma"),
            branch_id=branch_id,
            relationship_manager_id=rm_id,
            **fields,
        )
    )
    db.session.add(record)
    db.session.commit()
    return record


@pytest.fixture
def staff(app):
    branch = make_branch()
    people = {
        role: make_staff(role, branch) for role in ("Agent", "Compliance", "Auditor", "Admin")
    }
    db.session.commit()
    return branch, people


def test_masks_show_only_the_tail():
    assert mask_aadhaar("2341 2341 2346") == "XXXX XXXX 2346"
    assert mask_pan("ABCPE1234F") == "ABCPXXXX4F"
    assert mask_account("000123456789") == "****6789"


def test_the_database_holds_no_plain_text(app, staff):
    branch, _ = staff
    record = _client(branch.id, pan=PAN, aadhaar=AADHAAR, tax_file_number=TFN)
    raw = db.session.execute(
        text("SELECT pan, aadhaar, tax_file_number, pan_hash FROM client WHERE id = :id"),
        {"id": record.id},
    ).one()
    for stored, plain in zip(raw[:3], (PAN, AADHAAR, TFN), strict=True):
        assert plain not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert PAN not in raw.pan_hash and len(raw.pan_hash) == 64
    db.session.expire_all()
    assert db.session.get(Client, record.id).pan == PAN


def test_identifiers_are_found_by_keyed_hash_without_decrypting(app, staff):
    branch, _ = staff
    wanted = _client(branch.id, name="Wanted", pan=PAN)
    _client(branch.id, name="Other", pan="XYZPK9876Q")
    assert [c.name for c in find_clients_by_identifier("pan", "abcpe1234f")] == ["Wanted"]
    assert wanted.pan_hash != db.session.get(Client, wanted.id + 1).pan_hash


def test_invalid_identifiers_are_refused_naming_the_field(client, staff):
    _, people = staff
    token = api_token(client, people["Agent"].user.username)
    response = client.post(
        "/api/v1/client/",
        json={"name": "Bad Aadhaar", "aadhaar": "234123412345"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert "Aadhaar" in response.json["message"]["aadhaar"][0]
    assert db.session.query(Client).count() == 0


def test_screens_and_api_show_identifiers_masked(client, staff):
    branch, people = staff
    agent = people["Agent"]
    record = _client(branch.id, agent.user_id, pan=PAN, aadhaar=AADHAAR)
    login(client, agent.user.username)
    page = client.get(f"/clientview/show/{record.id}").get_data(as_text=True)
    assert "XXXX XXXX 2346" in page and "ABCPXXXX4F" in page
    assert PAN not in page and AADHAAR not in page
    edit_form = client.get(f"/clientview/edit/{record.id}").get_data(as_text=True)
    assert PAN not in edit_form and AADHAAR not in edit_form
    token = api_token(client, agent.user.username)
    body = client.get(
        f"/api/v1/client/{record.id}", headers={"Authorization": f"Bearer {token}"}
    ).json
    assert body["result"]["aadhaar_masked"] == "XXXX XXXX 2346"
    assert PAN not in str(body) and AADHAAR not in str(body)


def test_an_edit_that_leaves_the_identifier_blank_keeps_it(client, staff):
    branch, people = staff
    agent = people["Agent"]
    record = _client(branch.id, agent.user_id, pan=PAN)
    login(client, agent.user.username)
    form = {"client_type": "individual", "name": "Renamed", "status": "active", "pan": ""}
    client.post(f"/clientview/edit/{record.id}", data=form)
    db.session.expire_all()
    saved = db.session.get(Client, record.id)
    assert (saved.name, saved.pan) == ("Renamed", PAN)


@pytest.mark.parametrize(
    "role, allowed", [("Compliance", True), ("Admin", True), ("Agent", False), ("Auditor", False)]
)
def test_only_compliance_and_admin_can_reveal_and_each_reveal_is_audited(
    client, staff, role, allowed
):
    branch, people = staff
    record = _client(branch.id, people["Agent"].user_id, pan=PAN)
    user = people[role].user.username
    token = api_token(client, user)
    response = client.post(
        f"/api/v1/client/{record.id}/reveal",
        json={"field": "pan"},
        headers={"Authorization": f"Bearer {token}"},
    )
    reveals = (
        db.session.query(AuditLog)
        .filter_by(action="reveal", record_type="client", actor_name=user)
        .all()
    )
    if allowed:
        assert response.status_code == 200 and response.json["value"] == PAN
        assert len(reveals) == 1 and "pan" in reveals[0].detail and PAN not in reveals[0].detail
    else:
        assert response.status_code == 403
        assert PAN not in response.get_data(as_text=True)
        assert reveals == []


def test_compliance_reveals_from_the_client_page(client, staff):
    branch, people = staff
    record = _client(branch.id, pan=PAN)
    login(client, people["Compliance"].user.username)
    page = client.get(f"/clientview/show/{record.id}").get_data(as_text=True)
    assert 'id="reveal-pan"' in page
    shown = client.post(f"/clientview/reveal/{record.id}/pan", follow_redirects=True).get_data(
        as_text=True
    )
    assert f"PAN: {PAN}" in shown
    login(other := client.application.test_client(), people["Agent"].user.username)
    assert 'id="reveal-pan"' not in other.get(f"/clientview/show/{record.id}").get_data(
        as_text=True
    )


def test_rotate_keys_then_drop_the_old_key(app, staff, monkeypatch):
    branch, _ = staff
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", [old_key])
    ids = [_client(branch.id, name=f"C{i}", pan=PAN, aadhaar=AADHAAR).id for i in range(3)]

    monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", [new_key, old_key])
    result = app.test_cli_runner().invoke(args=["crm", "rotate-keys", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "client.pan: 3 values re-encrypted" in result.output

    monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", [new_key])
    db.session.expire_all()
    assert [db.session.get(Client, i).aadhaar for i in ids] == [AADHAAR] * 3


def test_a_wrong_key_fails_loudly(app, staff, monkeypatch):
    branch, _ = staff
    record = _client(branch.id, pan=PAN)
    monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", [Fernet.generate_key().decode()])
    db.session.expire_all()
    with pytest.raises(DecryptionError, match="not in CRM_ENCRYPTION_KEYS"):
        _ = db.session.get(Client, record.id).pan
