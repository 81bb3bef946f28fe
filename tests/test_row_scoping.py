"""Row scoping on PostgreSQL: agents see their own leads, managers their branch, on every path."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.support import api_token, login, make_branch, make_lead, make_staff


@pytest.fixture
def world(pg_app):
    mumbai, sydney = make_branch("MUM"), make_branch("SYD", tz="Australia/Sydney")
    people = {
        "agent_a": make_staff("Agent", mumbai),
        "agent_b": make_staff("Agent", mumbai),
        "agent_syd": make_staff("Agent", sydney),
        "manager": make_staff("Manager", mumbai),
        "admin": make_staff("Admin", mumbai),
        "auditor": make_staff("Auditor", sydney),
    }
    leads = {
        "a": make_lead(people["agent_a"], first_name="Alice"),
        "b": make_lead(people["agent_b"], first_name="Bob"),
        "syd": make_lead(people["agent_syd"], first_name="Sydney"),
    }
    db.session.commit()
    usernames = {key: profile.user.username for key, profile in people.items()}
    ids = {key: lead.id for key, lead in leads.items()}
    return usernames, ids


def _api_lead_ids(client, token):
    response = client.get(
        "/api/v1/lead/?q=(page_size:100)", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return {row["id"] for row in response.json["result"]}


def test_each_agent_sees_only_their_leads_on_list_show_edit_and_api(pg_client, world):
    users, ids = world
    for agent, own, others in (("agent_a", "a", ("b", "syd")), ("agent_b", "b", ("a", "syd"))):
        client = pg_client.application.test_client()
        login(client, users[agent])
        page = client.get("/leadview/list/").get_data(as_text=True)
        own_name = "Alice" if own == "a" else "Bob"
        assert own_name in page
        assert ("Bob" if own == "a" else "Alice") not in page
        assert "Sydney" not in page
        assert client.get(f"/leadview/show/{ids[own]}").status_code == 200
        assert client.get(f"/leadview/edit/{ids[own]}").status_code == 200
        for other in others:
            assert client.get(f"/leadview/show/{ids[other]}").status_code == 404
            assert client.get(f"/leadview/edit/{ids[other]}").status_code == 404

        token = api_token(client, users[agent])
        assert _api_lead_ids(client, token) == {ids[own]}
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get(f"/api/v1/lead/{ids[own]}", headers=auth).status_code == 200
        for other in others:
            response = client.get(f"/api/v1/lead/{ids[other]}", headers=auth)
            assert response.status_code == 404
            assert "Alice" not in response.get_data(as_text=True)


def test_agent_cannot_change_or_delete_another_agents_lead(pg_client, world):
    users, ids = world
    login(pg_client, users["agent_a"])
    token = api_token(pg_client, users["agent_a"])
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        pg_client.put(
            f"/api/v1/lead/{ids['b']}", json={"first_name": "Hacked"}, headers=auth
        ).status_code
        == 404
    )
    assert (
        pg_client.post(f"/leadview/edit/{ids['b']}", data={"first_name": "Hacked"}).status_code
        == 404
    )
    assert pg_client.delete(f"/api/v1/lead/{ids['b']}", headers=auth).status_code in (403, 404)
    from app.leads.models import Lead

    db.session.expire_all()
    assert db.session.get(Lead, ids["b"]).first_name == "Bob"


def test_agent_cannot_hand_a_lead_to_someone_else(pg_client, world):
    users, ids = world
    token = api_token(pg_client, users["agent_a"])
    from flask_appbuilder.security.sqla.models import User

    from app.org.models import StaffProfile

    other_user_id = db.session.query(User.id).filter_by(username=users["agent_b"]).scalar()
    response = pg_client.post(
        "/api/v1/lead/",
        json={
            "first_name": "New",
            "last_name": "Lead",
            "email": "new@x.example",
            "assigned_agent_id": other_user_id,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert "manager" in response.json["message"]["assigned_agent"][0]
    assert db.session.query(StaffProfile).count() == 6


def test_manager_sees_the_whole_branch_and_nothing_else(pg_client, world):
    users, ids = world
    token = api_token(pg_client, users["manager"])
    assert _api_lead_ids(pg_client, token) == {ids["a"], ids["b"]}
    login(pg_client, users["manager"])
    assert pg_client.get(f"/leadview/show/{ids['syd']}").status_code == 404
    assert pg_client.get(f"/leadview/show/{ids['b']}").status_code == 200


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_and_auditor_see_every_branch(pg_client, world, who):
    users, ids = world
    token = api_token(pg_client, users[who])
    assert _api_lead_ids(pg_client, token) == set(ids.values())


def test_interactions_follow_their_lead(pg_client, world):
    users, ids = world
    from app.leads.models import Lead
    from app.leads.services import add_interaction

    add_interaction(
        db.session.get(Lead, ids["b"]),
        kind="call",
        outcome="secret outcome",
        author_id=None,
        author=db.session.get(Lead, ids["b"]).assigned_agent,
    )
    db.session.commit()
    token = api_token(pg_client, users["agent_a"])
    auth = {"Authorization": f"Bearer {token}"}
    listing = pg_client.get("/api/v1/interaction/", headers=auth)
    assert listing.status_code == 200 and listing.json["count"] == 0
    response = pg_client.post(
        "/api/v1/interaction/",
        json={"lead_id": ids["b"], "kind": "note", "body": "sneaky"},
        headers=auth,
    )
    assert response.status_code == 422
    assert "lead" in response.json["message"]


def test_lead_form_offers_only_the_staff_and_branches_one_may_assign(pg_client, world):
    users, _ = world
    login(pg_client, users["agent_a"])
    page = pg_client.get("/leadview/add").get_data(as_text=True)
    assert users["agent_a"].capitalize() in page
    assert users["agent_b"].capitalize() not in page
    assert "Branch SYD" not in page and "Branch MUM" in page

    manager = pg_client.application.test_client()
    login(manager, users["manager"])
    page = manager.get("/leadview/add").get_data(as_text=True)
    assert users["agent_a"].capitalize() in page and users["agent_b"].capitalize() in page
    assert users["agent_syd"].capitalize() not in page
