"""Client profiles: company numbers, segment, contacts, directors, risk questionnaire,
communication preferences."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.clients.models import Client, ClientContact, ClientDirector, RiskAssessment
from app.clients.risk import QUESTIONS
from app.clients.services import prepare_client
from app.comms.models import Notification
from app.comms.services import notify
from app.core.errors import FieldError
from app.extensions import db
from tests.support import api_token, count, login, make_branch, make_staff

VALID_ABN, BAD_ABN = "51 824 753 556", "51 824 753 557"
VALID_ACN, BAD_ACN = "004 085 616", "004 085 617"
# The lowest answer to every question, and the highest.
CAUTIOUS = {q.key: q.answers[0][0] for q in QUESTIONS}
BOLD = {q.key: q.answers[-1][0] for q in QUESTIONS}


@pytest.fixture
def desk(app):
    branch = make_branch()
    agent = make_staff("Agent", branch)
    other = make_staff("Agent", branch)
    db.session.commit()
    return agent, other


def _client(agent, **fields) -> Client:
    record = prepare_client(
        Client(
            name=fields.pop("name", "Asha Verma"),
            email=fields.pop("email", "asha@example.in"),
            branch_id=agent.branch_id,
            relationship_manager_id=agent.user_id,
            **fields,
        )
    )
    db.session.add(record)
    db.session.commit()
    return record


def _refusal(answer) -> tuple[str, str]:
    """(field, reason) of a refused API call: ``{"message": {field: [reason]}}``."""
    ((field, reasons),) = answer.json["message"].items()
    return field, reasons[0]


def _auth(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


# ---- company numbers and segment -----------------------------------------------------------


def test_abn_and_acn_are_checked_and_stored_compact(desk):
    agent, _ = desk
    company = _client(
        agent, client_type="company", name="Acme", legal_name="Acme Pty Ltd", abn=VALID_ABN
    )
    assert company.abn == "51824753556"
    with pytest.raises(FieldError, match="not a valid ABN") as refused:
        _client(agent, client_type="company", legal_name="Acme Pty Ltd", abn=BAD_ABN)
    assert refused.value.field == "abn"
    with pytest.raises(FieldError, match="not a valid ACN"):
        _client(agent, client_type="company", legal_name="Acme Pty Ltd", acn=BAD_ACN)
    assert _client(
        agent, client_type="company", legal_name="Beta Pty Ltd", acn=VALID_ACN, email=None
    ).acn == ("004085616")


def test_a_company_needs_its_legal_name_and_a_business_number(desk):
    agent, _ = desk
    with pytest.raises(FieldError, match="legal name"):
        _client(agent, client_type="company", abn=VALID_ABN)
    with pytest.raises(FieldError, match="ABN, an ACN or a registration number"):
        _client(agent, client_type="company", legal_name="Acme Pty Ltd")
    db.session.rollback()
    assert count(Client) == 0


def test_the_client_form_names_a_bad_abn_and_saves_nothing(client, desk):
    agent, _ = desk
    login(client, agent.user.username)
    page = client.post(
        "/clientview/add",
        data={
            "client_type": "company",
            "name": "Acme",
            "legal_name": "Acme Pty Ltd",
            "abn": BAD_ABN,
            "status": "active",
        },
    ).get_data(as_text=True)
    assert "not a valid ABN" in page
    assert count(Client) == 0


def test_segment_follows_investment_capacity(desk):
    agent, _ = desk
    record = _client(agent, investment_capacity="1m_10m")
    assert record.segment == "hni"
    record.investment_capacity = "over_10m"
    prepare_client(record)
    db.session.commit()
    assert record.segment == "uhni"
    record.investment_capacity = None
    prepare_client(record)
    assert record.segment is None


def test_segment_cannot_be_written_through_the_api(client, desk):
    agent, _ = desk
    answer = client.post(
        "/api/v1/client/",
        json={"name": "Ravi", "email": "ravi@example.in", "segment": "uhni"},
        headers=_auth(client, agent),
    )
    assert answer.status_code == 422 and "segment" in answer.get_data(as_text=True)
    made = client.post(
        "/api/v1/client/",
        json={"name": "Ravi", "email": "ravi@example.in", "investment_capacity": "100k_1m"},
        headers=_auth(client, agent),
    )
    assert made.status_code == 201
    shown = client.get(f"/api/v1/client/{made.json['id']}", headers=_auth(client, agent))
    assert shown.json["result"]["segment"] == "affluent"


# ---- contacts and directors ----------------------------------------------------------------


def test_contacts_are_normalised_and_one_is_preferred_per_type(client, desk):
    agent, _ = desk
    owner = _client(agent)
    auth = _auth(client, agent)

    def add(value, preferred):
        return client.post(
            "/api/v1/clientcontact/",
            json={"client_id": owner.id, "kind": "mobile", "value": value, "preferred": preferred},
            headers=auth,
        )

    first = add("98765 43210", True)
    assert first.status_code == 201
    second = add("+91 91234 56789", True)
    assert second.status_code == 201
    db.session.expire_all()
    contacts = db.session.scalars(select(ClientContact).order_by(ClientContact.id)).all()
    assert [c.value for c in contacts] == ["+919876543210", "+919123456789"]
    assert [c.preferred for c in contacts] == [False, True]  # the newer preferred one wins
    again = add("+91 98765 43210", False)
    assert again.status_code == 422 and "already has" in _refusal(again)[1]
    bad = add("12", False)
    assert bad.status_code == 422 and _refusal(bad)[0] == "value"
    assert count(ClientContact) == 2


def test_another_agent_cannot_add_a_contact_to_my_client(client, desk):
    agent, other = desk
    owner = _client(agent)
    answer = client.post(
        "/api/v1/clientcontact/",
        json={"client_id": owner.id, "kind": "email", "value": "x@example.in"},
        headers=_auth(client, other),
    )
    assert answer.status_code == 422 and "client you look after" in _refusal(answer)[1]
    assert count(ClientContact) == 0


def test_only_companies_have_directors(client, desk):
    agent, _ = desk
    person = _client(agent)
    company = _client(
        agent, name="Acme", client_type="company", legal_name="Acme Pty Ltd", abn=VALID_ABN
    )
    auth = _auth(client, agent)
    refused = client.post(
        "/api/v1/clientdirector/",
        json={"client_id": person.id, "full_name": "Anil Rao"},
        headers=auth,
    )
    assert refused.status_code == 422 and "only a company" in _refusal(refused)[1]
    added = client.post(
        "/api/v1/clientdirector/",
        json={"client_id": company.id, "full_name": "Anil Rao", "phone": "98765 43210"},
        headers=auth,
    )
    assert added.status_code == 201
    director = db.session.scalar(select(ClientDirector))
    assert (director.full_name, director.phone, director.position) == (
        "Anil Rao",
        "+919876543210",
        "Director",
    )
    login(client, agent.user.username)
    page = client.get(f"/clientview/show/{company.id}").get_data(as_text=True)
    assert "Anil Rao" in page  # listed on the company's page


# ---- risk questionnaire --------------------------------------------------------------------


def test_the_questionnaire_sets_the_risk_profile(client, desk):
    agent, _ = desk
    owner = _client(agent)
    login(client, agent.user.username)
    form = client.get(f"/clientview/risk/{owner.id}").get_data(as_text=True)
    assert QUESTIONS[0].text in form
    done = client.post(f"/clientview/risk/{owner.id}", data=BOLD, follow_redirects=True)
    assert "Risk profile: aggressive" in done.get_data(as_text=True)
    db.session.expire_all()
    assert (owner.risk_profile, owner.risk_score) == ("aggressive", 31)
    client.post(f"/clientview/risk/{owner.id}", data=CAUTIOUS)
    db.session.expire_all()
    assert (owner.risk_profile, owner.risk_score) == ("conservative", 0)
    assert count(RiskAssessment) == 2  # both kept, the newest counts


def test_an_unanswered_question_is_named_and_nothing_is_saved(client, desk):
    agent, _ = desk
    owner = _client(agent)
    login(client, agent.user.username)
    partial = {k: v for k, v in BOLD.items() if k != "drawdown"}
    answer = client.post(f"/clientview/risk/{owner.id}", data=partial)
    assert answer.status_code == 422
    assert "unanswered: Your investments fall 20%" in answer.get_data(as_text=True)
    assert count(RiskAssessment) == 0
    db.session.expire_all()
    assert owner.risk_profile is None
    assert db.session.scalar(
        select(AuditLog).where(
            AuditLog.action == "rejected", AuditLog.record_type == "risk_assessment"
        )
    )


def test_profile_limits_are_a_setting(client, app, desk, monkeypatch):
    agent, _ = desk
    owner = _client(agent)
    middle = {q.key: q.answers[1][0] for q in QUESTIONS}  # 2+2+2+1+2+2 = 11
    answer = client.post(
        f"/api/v1/client/{owner.id}/risk_profile",
        json={"answers": middle},
        headers=_auth(client, agent),
    )
    assert answer.status_code == 201 and answer.json == {
        "id": answer.json["id"],
        "profile": "moderate",
        "score": 11,
    }
    monkeypatch.setitem(app.config, "CRM_RISK_PROFILE_LIMITS", {"conservative": 12})
    again = client.post(
        f"/api/v1/client/{owner.id}/risk_profile",
        json={"answers": middle},
        headers=_auth(client, agent),
    )
    assert again.json["profile"] == "conservative"
    unknown = client.post(
        f"/api/v1/client/{owner.id}/risk_profile",
        json={"answers": {**middle, "horizon": "forever"}},
        headers=_auth(client, agent),
    )
    assert unknown.status_code == 422 and _refusal(unknown)[0] == "horizon"


# ---- communication preferences -------------------------------------------------------------


def test_messages_go_out_on_the_preferred_channel(client, desk):
    agent, _ = desk
    owner = _client(agent, phone="98765 43210")
    login(client, agent.user.username)
    saved = client.post(
        f"/clientview/preferences/{owner.id}",
        data={"email": "on", "sms": "on", "preferred_channel": "sms"},
        follow_redirects=True,
    )
    assert "Communication preferences saved" in saved.get_data(as_text=True)
    db.session.expire_all()
    rows = notify(
        "offer", "offer:1", "An offer", "Body", client_id=owner.id, channels=("email", "sms")
    )
    db.session.commit()
    assert [(r.channel, r.address) for r in rows] == [("sms", "+919876543210")]
    # E-mail only when it is the one asked for.
    rows = notify("offer", "offer:2", "Another", "Body", client_id=owner.id, channels=("email",))
    assert [r.channel for r in rows] == ["email"]


def test_a_preferred_channel_must_be_allowed_and_reachable(client, desk):
    agent, _ = desk
    owner = _client(agent)  # no phone
    login(client, agent.user.username)
    refused = client.post(
        f"/clientview/preferences/{owner.id}", data={"email": "on", "preferred_channel": "sms"}
    )
    assert refused.status_code == 422 and "must be allowed" in refused.get_data(as_text=True)
    no_phone = client.put(
        f"/api/v1/client/{owner.id}/preferences",
        json={"email": True, "sms": True, "preferred_channel": "sms"},
        headers=_auth(client, agent),
    )
    assert no_phone.status_code == 422 and "no phone number" in _refusal(no_phone)[1]
    db.session.expire_all()
    assert owner.preferred_channel == "email"
    # E-mail switched off: nothing goes to the client by e-mail.
    assert (
        client.put(
            f"/api/v1/client/{owner.id}/preferences",
            json={"email": False, "sms": False, "preferred_channel": "email"},
            headers=_auth(client, agent),
        ).status_code
        == 422
    )
    assert count(Notification) == 0


# ---- interactions with a client directly ---------------------------------------------------


def test_an_interaction_can_be_with_a_client_and_shows_on_its_timeline(client, desk):
    agent, other = desk
    owner = _client(agent)
    auth = _auth(client, agent)
    made = client.post(
        "/api/v1/interaction/",
        json={"client_id": owner.id, "kind": "meeting", "outcome": "annual review"},
        headers=auth,
    )
    assert made.status_code == 201
    events = client.get(f"/api/v1/client/{owner.id}/timeline", headers=auth).json["result"]
    assert [e["title"] for e in events if e["kind"] == "interaction"] == ["Meeting: annual review"]
    neither = client.post("/api/v1/interaction/", json={"kind": "note"}, headers=auth)
    assert neither.status_code == 422 and "a lead or a client" in _refusal(neither)[1]
    not_mine = client.post(
        "/api/v1/interaction/",
        json={"client_id": owner.id, "kind": "note"},
        headers=_auth(client, other),
    )
    assert not_mine.status_code == 422 and _refusal(not_mine)[0] == "client"
