"""Lead scores: explainable, recomputed when their inputs change, weights from settings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.core.types import utcnow
from app.extensions import db
from app.leads.models import Lead
from tests.support import api_token, login, make_branch, make_staff


@pytest.fixture
def agent(app):
    profile = make_staff("Agent", make_branch())
    db.session.commit()
    return profile


def _auth(client, agent):
    return {"Authorization": f"Bearer {api_token(client, agent.user.username)}"}


def _factors(lead_id):
    db.session.expire_all()
    lead = db.session.get(Lead, lead_id)
    return lead.score, {f["factor"]: f["points"] for f in json.loads(lead.score_breakdown)}


def test_a_new_lead_is_scored_with_its_reasons(client, agent):
    response = client.post(
        "/api/v1/lead/",
        json={
            "first_name": "Asha",
            "last_name": "Verma",
            "email": "asha@example.com",
            "source": "referral",
            "investment_capacity": "over_10m",
        },
        headers=_auth(client, agent),
    )
    score, factors = _factors(response.json["id"])
    assert factors == {
        "source": 25,
        "completeness": 10,
        "engagement": 0,
        "recency": 0,
        "capacity": 15,
    }
    assert score == 50


def test_logging_an_interaction_raises_the_score_and_says_why(client, agent):
    auth = _auth(client, agent)
    lead_id = client.post(
        "/api/v1/lead/",
        json={"first_name": "A", "last_name": "B", "email": "ab@example.com"},
        headers=auth,
    ).json["id"]
    before, _ = _factors(lead_id)
    assert (
        client.post(
            "/api/v1/interaction/",
            json={"lead_id": lead_id, "kind": "call", "outcome": "keen"},
            headers=auth,
        ).status_code
        == 201
    )
    after, factors = _factors(lead_id)
    assert after == before + 5 + 15  # one interaction, today
    assert factors["engagement"] == 5 and factors["recency"] == 15
    login(client, agent.user.username)
    page = client.get(f"/leadview/show/{lead_id}").get_data(as_text=True)
    assert (
        "Why this score" in page
        and "1 interaction(s)" in page
        and "last interaction 0 day(s) ago" in page
    )


def test_weights_come_from_settings(client, agent, app, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_LEAD_SCORE_WEIGHTS", {"source": {"manual": 40}})
    lead_id = client.post(
        "/api/v1/lead/",
        json={"first_name": "A", "last_name": "B", "phone": "+91 98765 40000", "source": "manual"},
        headers=_auth(client, agent),
    ).json["id"]
    assert _factors(lead_id)[1]["source"] == 40


def test_the_nightly_rescore_lets_recency_decay(client, agent):
    auth = _auth(client, agent)
    lead_id = client.post(
        "/api/v1/lead/",
        json={"first_name": "A", "last_name": "B", "email": "old@example.com"},
        headers=auth,
    ).json["id"]
    when = (utcnow() - timedelta(days=10)).isoformat()
    client.post(
        "/api/v1/interaction/",
        json={"lead_id": lead_id, "kind": "email", "occurred_at": when},
        headers=auth,
    )
    assert _factors(lead_id)[1]["recency"] == 8
    lead = db.session.get(Lead, lead_id)
    for interaction in lead.interactions:
        interaction.occurred_at = utcnow() - timedelta(days=25)
    db.session.commit()
    from app.leads.jobs import rescore_leads

    assert rescore_leads() == 1
    assert _factors(lead_id)[1]["recency"] == 8
    for interaction in db.session.get(Lead, lead_id).interactions:
        interaction.occurred_at = utcnow() - timedelta(days=31)
    db.session.commit()
    rescore_leads()
    assert _factors(lead_id)[1]["recency"] == 0
