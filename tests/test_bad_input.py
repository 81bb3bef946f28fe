"""Bad input answers with a message naming the problem (4xx or a form error) and writes nothing."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.leads.models import Lead
from tests.support import api_token, count, login, make_branch, make_staff

GOOD = {
    "first_name": "Asha",
    "last_name": "Verma",
    "email": "asha@example.com",
    "phone": "+91 98765 43210",
}


@pytest.fixture
def agent(app):
    profile = make_staff("Agent", make_branch())
    db.session.commit()
    return profile.user.username


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"favourite_colour": "blue"}, "favourite_colour", "Unknown field"),
        ({"first_name": "x" * 10_000}, "first_name", "maximum length"),
        ({"last_name": "Ver\x00ma"}, "last_name", "NUL"),
        ({"phone": "+91 12"}, "phone", "phone number"),
        ({"phone": "call me maybe"}, "phone", "phone number"),
        ({"email": "asha@"}, "email", "e-mail"),
        ({"status": "converted"}, "status", "new, contacted or qualified"),
        ({"source": "carrier-pigeon"}, "source", "must be one of"),
    ],
)
def test_api_refuses_bad_lead_fields_by_name(client, agent, changes, field, words):
    token = api_token(client, agent)
    response = client.post(
        "/api/v1/lead/", json={**GOOD, **changes}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.json
    assert field in response.json["message"]
    assert words in " ".join(response.json["message"][field])
    assert count(Lead) == 0


def test_api_refuses_non_json_and_malformed_json(client, agent):
    auth = {"Authorization": f"Bearer {api_token(client, agent)}"}
    assert client.post("/api/v1/lead/", data="first_name=x", headers=auth).status_code == 400
    response = client.post(
        "/api/v1/lead/", data="{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert count(Lead) == 0


def test_api_update_with_bad_phone_changes_nothing(client, agent):
    auth = {"Authorization": f"Bearer {api_token(client, agent)}"}
    created = client.post("/api/v1/lead/", json=GOOD, headers=auth)
    assert created.status_code == 201
    lead_id = created.json["id"]
    response = client.put(
        f"/api/v1/lead/{lead_id}", json={"phone": "12", "first_name": "Changed"}, headers=auth
    )
    assert response.status_code == 422
    db.session.expire_all()
    lead = db.session.get(Lead, lead_id)
    assert (lead.first_name, lead.phone) == ("Asha", "+919876543210")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"first_name": "x" * 10_000}, "cannot be longer than 100 characters"),
        ({"last_name": "Ver\x00ma"}, "NUL"),
        ({"phone": "98765"}, "not a valid phone number"),
        ({"email": "not-an-email"}, "not a valid e-mail"),
    ],
)
def test_lead_form_shows_the_error_and_writes_nothing(client, agent, changes, message):
    login(client, agent)
    form = {**GOOD, "source": "manual", "status": "new", **changes}
    response = client.post("/leadview/add", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(Lead) == 0


def test_lead_form_saves_good_input_normalised(client, agent):
    login(client, agent)
    form = {**GOOD, "email": "Asha@Example.COM", "source": "manual", "status": "new"}
    response = client.post("/leadview/add", data=form, follow_redirects=True)
    assert response.status_code == 200
    lead = db.session.query(Lead).one()
    assert (lead.email, lead.phone, lead.source) == ("asha@example.com", "+919876543210", "manual")


def test_a_lost_lead_needs_a_reason(client, agent):
    auth = {"Authorization": f"Bearer {api_token(client, agent)}"}
    lead_id = client.post("/api/v1/lead/", json=GOOD, headers=auth).json["id"]
    response = client.put(f"/api/v1/lead/{lead_id}", json={"status": "lost"}, headers=auth)
    assert response.status_code == 422
    assert "reason" in response.json["message"]["lost_reason"][0]
    ok = client.put(
        f"/api/v1/lead/{lead_id}",
        json={"status": "lost", "lost_reason": "went elsewhere"},
        headers=auth,
    )
    assert ok.status_code == 200
    back = client.put(f"/api/v1/lead/{lead_id}", json={"status": "new"}, headers=auth)
    assert back.status_code == 422
    assert "cannot move a lost lead" in back.json["message"]["status"][0]
