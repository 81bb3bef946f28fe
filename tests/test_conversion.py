"""Converting a qualified lead into a client: one transaction, refusals that change nothing,
and two simultaneous conversions making exactly one client (PostgreSQL row lock)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.clients.models import Client
from app.documents.models import Document
from app.documents.services import Owner, upload_document
from app.extensions import db
from app.leads.conversion import convert_lead
from app.leads.models import Interaction, Lead
from app.leads.services import add_interaction
from app.security.scoping import Actor
from tests.support import api_token, count, login, make_branch, make_lead, make_staff

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def qualified(pg_app, tmp_path, monkeypatch):
    monkeypatch.setitem(pg_app.config, "STORAGE_LOCAL_ROOT", str(tmp_path))
    pg_app.extensions.pop("crm_storage", None)
    agent = make_staff("Agent", make_branch())
    lead = make_lead(
        agent, first_name="Asha", last_name="Verma", company="Verma Exports", status="qualified"
    )
    add_interaction(lead, kind="call", outcome="keen", author=agent.user)
    actor = Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id, agent.user.username)
    upload_document(Owner("lead", lead), "pan_card", "pan.pdf", PDF, actor=actor)
    db.session.commit()
    yield agent, lead.id
    pg_app.extensions.pop("crm_storage", None)


def test_a_qualified_lead_becomes_a_client_with_its_history(pg_client, qualified):
    agent, lead_id = qualified
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    response = pg_client.post(f"/api/v1/lead/{lead_id}/convert", headers=auth)
    assert response.status_code == 201, response.json
    client_id = response.json["client_id"]
    db.session.expire_all()
    client = db.session.get(Client, client_id)
    lead = db.session.get(Lead, lead_id)
    assert (client.name, client.email, client.phone) == ("Asha Verma", lead.email, lead.phone)
    assert client.relationship_manager_id == agent.user_id and client.branch_id == agent.branch_id
    assert (lead.status, lead.converted_client_id) == ("converted", client_id)
    assert [
        i.client_id
        for i in db.session.scalars(select(Interaction).where(Interaction.lead_id == lead_id))
    ] == [client_id]
    document = db.session.scalars(select(Document)).one()
    assert (document.client_id, document.lead_id) == (client_id, None)


@pytest.mark.parametrize(
    "status, words",
    [("converted", "already converted"), ("lost", "lost lead cannot"), ("new", "only a qualified")],
)
def test_refused_conversions_change_nothing(pg_client, qualified, status, words):
    agent, lead_id = qualified
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    if status == "converted":
        assert pg_client.post(f"/api/v1/lead/{lead_id}/convert", headers=auth).status_code == 201
    else:
        lead = db.session.get(Lead, lead_id)
        lead.status, lead.lost_reason = status, "no budget" if status == "lost" else None
        db.session.commit()
    clients_before = count(Client)
    response = pg_client.post(f"/api/v1/lead/{lead_id}/convert", headers=auth)
    assert response.status_code == 409
    assert words in response.json["message"]["status"][0]
    assert count(Client) == clients_before


def test_two_simultaneous_conversions_make_one_client(pg_app, qualified):
    _, lead_id = qualified
    start = threading.Barrier(2)
    outcomes = []

    def convert():
        with pg_app.app_context():
            start.wait()
            try:
                convert_lead(lead_id)
                db.session.commit()
                outcomes.append("converted")
            except Exception as exc:  # the loser is refused
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["ConflictError", "converted"]
    assert count(Client) == 1


def test_converting_from_the_lead_page_lands_on_the_client_timeline_with_the_interaction(
    pg_client, qualified
):
    agent, lead_id = qualified
    login(pg_client, agent.user.username)
    page = pg_client.get(f"/leadview/show/{lead_id}").get_data(as_text=True)
    assert 'id="convert-lead"' in page
    landed = pg_client.post(f"/leadview/convert/{lead_id}", follow_redirects=True)
    text = landed.get_data(as_text=True)
    assert landed.request.path.startswith("/clientview/timeline/")
    assert "Asha Verma" in text and "keen" in text  # the interaction is on the client's timeline
    client_page = pg_client.get(landed.request.path.replace("timeline", "show"))
    assert "keen" in client_page.get_data(as_text=True)  # and in its interactions list


def test_an_agent_cannot_convert_someone_elses_lead(pg_client, qualified):
    _, lead_id = qualified
    other = make_staff("Agent", make_branch())
    db.session.commit()
    auth = {"Authorization": f"Bearer {api_token(pg_client, other.user.username)}"}
    assert pg_client.post(f"/api/v1/lead/{lead_id}/convert", headers=auth).status_code == 404
    assert count(Client) == 0
