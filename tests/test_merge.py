"""Near duplicates are suggested; a merge keeps one lead and moves everything of the other."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.core.types import utcnow
from app.documents.models import Document
from app.documents.services import Owner, upload_document
from app.extensions import db
from app.leads.models import Interaction, Lead
from app.leads.services import add_interaction
from app.security.scoping import Actor
from app.tasks.models import Task
from tests.support import api_token, login, make_branch, make_lead, make_staff

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def pair(pg_app, tmp_path, monkeypatch):
    monkeypatch.setitem(pg_app.config, "STORAGE_LOCAL_ROOT", str(tmp_path))
    pg_app.extensions.pop("crm_storage", None)
    agent = make_staff("Agent", make_branch())
    keep = make_lead(
        agent, first_name="Asha", last_name="Verma", phone="+91 98765 12345", email=None
    )
    other = make_lead(
        agent,
        first_name="Asha",
        last_name="Varma",
        email="asha@verma-exports.example",
        phone=None,
        company="Verma Exports",
        notes="Prefers calls after 6pm",
    )
    db.session.flush()
    # The near-duplicate has the same subscriber digits under another country code (a typo).
    db.session.execute(
        Lead.__table__.update().where(Lead.id == other.id).values(phone="+6176512345")
    )
    add_interaction(other, kind="call", outcome="asked for brochure", author=agent.user)
    db.session.add(
        Task(
            title="Send brochure",
            assignee_id=agent.user_id,
            created_by_id=agent.user_id,
            branch_id=agent.branch_id,
            due_at=utcnow() + timedelta(days=1),
            lead_id=other.id,
        )
    )
    actor = Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id, agent.user.username)
    upload_document(Owner("lead", keep), "pan_card", "pan-v1.pdf", PDF, actor=actor)
    upload_document(Owner("lead", other), "pan_card", "pan-other.pdf", PDF, actor=actor)
    db.session.commit()
    yield agent, keep.id, other.id
    pg_app.extensions.pop("crm_storage", None)


def test_a_similar_name_with_the_same_phone_digits_is_suggested(pg_client, pair):
    agent, keep_id, other_id = pair
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    result = pg_client.get(f"/api/v1/lead/{keep_id}/near_duplicates", headers=auth).json["result"]
    assert [r["id"] for r in result] == [other_id]
    assert "same phone digits" in result[0]["reason"] and result[0]["similarity"] >= 80
    login(pg_client, agent.user.username)
    page = pg_client.get(f"/leadview/duplicates/{keep_id}").get_data(as_text=True)
    assert "Asha Varma" in page and f"/leadview/merge/{keep_id}/{other_id}" in page


def test_merge_moves_every_related_record_and_removes_the_other(pg_client, pair):
    agent, keep_id, other_id = pair
    login(pg_client, agent.user.username)
    response = pg_client.post(f"/leadview/merge/{keep_id}/{other_id}", follow_redirects=True)
    assert response.status_code == 200 and "was merged into this one" in response.get_data(
        as_text=True
    )
    db.session.expire_all()
    keep = db.session.get(Lead, keep_id)
    assert db.session.get(Lead, other_id) is None
    assert [
        i.outcome
        for i in db.session.scalars(select(Interaction).where(Interaction.lead_id == keep_id))
    ] == ["asked for brochure"]
    assert db.session.scalars(select(Task.lead_id)).one() == keep_id
    assert sorted(
        db.session.scalars(select(Document.version).where(Document.lead_id == keep_id))
    ) == [1, 2]
    assert keep.email == "asha@verma-exports.example" and keep.company == "Verma Exports"
    assert "Prefers calls after 6pm" in keep.notes
    assert json.loads(keep.score_breakdown)[2]["points"] == 5  # engagement: the moved interaction
    listing = pg_client.get("/leadview/list/").get_data(as_text=True)
    assert "Varma" not in listing
    assert pg_client.get(f"/leadview/show/{other_id}").status_code == 404
    event = db.session.scalars(
        select(AuditLog).where(
            AuditLog.record_type == "lead",
            AuditLog.record_id == str(keep_id),
            AuditLog.detail.like("merged lead%"),
        )
    ).one()
    assert f"merged lead #{other_id} into #{keep_id}" in event.detail
    deleted = db.session.scalars(
        select(AuditLog)
        .where(
            AuditLog.action == "delete",
            AuditLog.record_type == "lead",
            AuditLog.record_id == str(other_id),
        )
        .order_by(AuditLog.seq.desc())
    ).first()
    assert deleted is not None


def test_merge_refusals_change_nothing(pg_client, pair):
    agent, keep_id, other_id = pair
    auth = {"Authorization": f"Bearer {api_token(pg_client, agent.user.username)}"}
    itself = pg_client.post(
        f"/api/v1/lead/{keep_id}/merge", json={"other_id": keep_id}, headers=auth
    )
    assert itself.status_code == 422 and "itself" in itself.json["message"]["other_id"][0]
    stranger = make_staff("Agent", make_branch())
    db.session.commit()
    theirs = {"Authorization": f"Bearer {api_token(pg_client, stranger.user.username)}"}
    assert (
        pg_client.post(
            f"/api/v1/lead/{keep_id}/merge", json={"other_id": other_id}, headers=theirs
        ).status_code
        == 404
    )
    assert db.session.get(Lead, other_id) is not None
    ok = pg_client.post(f"/api/v1/lead/{keep_id}/merge", json={"other_id": other_id}, headers=auth)
    assert ok.status_code == 200 and ok.json["id"] == keep_id
