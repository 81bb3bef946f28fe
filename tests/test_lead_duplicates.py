"""Exact duplicates (normalised e-mail or E.164 phone, against open leads and clients) are refused
on every path, with a link to the existing record."""

from __future__ import annotations

import pytest

from app.clients.models import Client
from app.clients.services import prepare_client
from app.extensions import db
from app.leads.models import Lead
from tests.support import api_token, count, login, make_branch, make_lead, make_staff


@pytest.fixture
def agents(app):
    branch = make_branch()
    first, second = make_staff("Agent", branch), make_staff("Agent", branch)
    db.session.commit()
    return first, second


def _post(client, username, **fields):
    body = {"first_name": "Asha", "last_name": "Verma", **fields}
    return client.post(
        "/api/v1/lead/",
        json=body,
        headers={"Authorization": f"Bearer {api_token(client, username)}"},
    )


def test_same_email_in_another_case_is_refused_with_a_link(client, agents):
    first, second = agents
    existing = make_lead(first, email="asha@example.com", phone=None)
    db.session.commit()
    response = _post(client, second.user.username, email="ASHA@Example.com")
    assert response.status_code == 409
    assert response.json["existing"] == {
        "type": "lead",
        "id": existing.id,
        "url": f"/leadview/show/{existing.id}",
    }
    assert "already exists" in response.json["message"]["email"][0]
    assert count(Lead) == 1


def test_same_phone_typed_differently_is_refused(client, agents):
    first, _ = agents
    make_lead(first, email=None, phone="+91 98765 43210")
    db.session.commit()
    response = _post(client, first.user.username, phone="098765-43210", email="other@example.com")
    assert response.status_code == 409
    assert "phone" in response.json["message"]


def test_a_clients_email_blocks_a_new_lead(client, agents):
    first, _ = agents
    existing = prepare_client(
        Client(name="Asha Verma", email="asha@client.example", branch_id=first.branch_id)
    )
    db.session.add(existing)
    db.session.commit()
    response = _post(client, first.user.username, email="asha@client.example")
    assert response.status_code == 409
    assert response.json["existing"]["type"] == "client"


def test_a_lost_lead_does_not_block_and_a_lead_keeps_its_own_email(client, agents):
    first, _ = agents
    lost = make_lead(first, email="back@example.com", phone=None)
    db.session.commit()
    lost.status, lost.lost_reason = "lost", "no budget"
    db.session.commit()
    created = _post(client, first.user.username, email="back@example.com")
    assert created.status_code == 201
    auth = {"Authorization": f"Bearer {api_token(client, first.user.username)}"}
    edited = client.put(
        f"/api/v1/lead/{created.json['id']}", json={"first_name": "Asha R."}, headers=auth
    )
    assert edited.status_code == 200


def test_the_lead_form_refuses_a_duplicate_with_the_link(client, agents):
    first, _ = agents
    existing = make_lead(first, email="dup@example.com", phone=None)
    db.session.commit()
    login(client, first.user.username)
    form = {
        "first_name": "Dup",
        "last_name": "Licate",
        "email": "DUP@example.com",
        "source": "manual",
        "status": "new",
    }
    page = client.post("/leadview/add", data=form, follow_redirects=True).get_data(as_text=True)
    assert f"/leadview/show/{existing.id}" in page
    assert count(Lead) == 1
