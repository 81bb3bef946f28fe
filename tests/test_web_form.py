"""The public enquiry form: no login, CSRF, honeypot, rate limit, right branch, nothing leaked."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.leads.models import Lead
from tests.support import build_app, count, make_branch, make_lead, make_staff, prepare_schema


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    app = build_app(
        f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}",
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=True,
        CRM_ENQUIRY_RATE_LIMIT="3 per minute",
    )
    prepare_schema(app)
    with app.app_context():
        make_branch("MUM")
        db.session.commit()
    return app


def _form(client, address):
    page = client.get("/enquire/mum", environ_base={"REMOTE_ADDR": address}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return {
        "csrf_token": token,
        "first_name": "Asha",
        "last_name": "Verma",
        "phone": "+91 98765 11111",
        "website": "",
    }


def _leads(app):
    with app.app_context():
        return [
            (lead.source, lead.status, lead.phone, lead.branch.code, lead.assigned_agent_id)
            for lead in db.session.query(Lead).all()
        ]


def test_a_visitor_leaves_an_enquiry_without_logging_in(public_app):
    client = public_app.test_client()
    form = _form(client, "10.1.0.1")
    response = client.post("/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.1"})
    assert response.status_code == 200 and 'id="thanks"' in response.get_data(as_text=True)
    # MUM has no agents: the enquiry waits, unassigned, for the branch manager.
    assert _leads(public_app) == [("web_form", "new", "+919876511111", "MUM", None)]


def test_without_the_csrf_token_nothing_is_saved(public_app):
    client = public_app.test_client()
    before = len(_leads(public_app))
    form = {**_form(client, "10.1.0.2"), "csrf_token": "forged"}
    response = client.post("/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.2"})
    assert response.status_code == 400
    assert len(_leads(public_app)) == before


def test_a_filled_honeypot_is_thanked_but_not_saved(public_app):
    client = public_app.test_client()
    before = len(_leads(public_app))
    form = {
        **_form(client, "10.1.0.3"),
        "website": "http://spam.example",
        "phone": "+91 98765 22222",
    }
    response = client.post("/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.3"})
    assert 'id="thanks"' in response.get_data(as_text=True)
    assert len(_leads(public_app)) == before


def test_a_known_person_is_thanked_without_revealing_the_record(public_app):
    with public_app.app_context():
        make_lead(
            make_staff(
                "Agent", db.session.query(Lead).first().branch if count(Lead) else make_branch()
            ),
            phone="+91 98765 33333",
            email=None,
        )
        db.session.commit()
    client = public_app.test_client()
    before = len(_leads(public_app))
    form = {**_form(client, "10.1.0.4"), "phone": "+91 98765 33333"}
    page = client.post(
        "/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.4"}
    ).get_data(as_text=True)
    assert 'id="thanks"' in page and "leadview" not in page
    assert len(_leads(public_app)) == before


def test_bad_input_is_named_on_the_form(public_app):
    client = public_app.test_client()
    form = {**_form(client, "10.1.0.5"), "phone": "12"}
    response = client.post("/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.5"})
    assert response.status_code == 400 and "not a valid phone number" in response.get_data(
        as_text=True
    )


def test_posting_is_rate_limited_per_address(public_app):
    client = public_app.test_client()
    codes = []
    for i in range(5):
        form = {**_form(client, "10.1.0.6"), "phone": f"+91 98765 4444{i}"}
        codes.append(
            client.post(
                "/enquire/mum", data=form, environ_base={"REMOTE_ADDR": "10.1.0.6"}
            ).status_code
        )
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_an_unknown_branch_is_404(public_app):
    assert public_app.test_client().get("/enquire/nowhere").status_code == 404


def test_enquiries_go_to_the_branch_agent_with_the_fewest_open_leads(public_app):
    with public_app.app_context():
        branch = make_branch("PUN")
        busy = make_staff("Agent", branch)
        free = make_staff("Agent", branch)
        make_staff("Manager", branch)  # managers are not handed enquiries
        make_lead(busy)
        lost = make_lead(free)
        lost.status, lost.lost_reason = "lost", "no budget"  # not open: not counted
        db.session.commit()
        busy_id, free_id, lost_id = busy.user_id, free.user_id, lost.id
    client = public_app.test_client()
    assigned = []
    for i, address in enumerate(("10.2.0.1", "10.2.0.2", "10.2.0.3")):
        page = client.get("/enquire/pun", environ_base={"REMOTE_ADDR": address})
        token = re.search(
            r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
        ).group(1)
        form = {
            "csrf_token": token,
            "first_name": "Visitor",
            "last_name": f"Number{i}",
            "email": f"visitor{i}@example.in",
            "website": "",
        }
        client.post("/enquire/pun", data=form, environ_base={"REMOTE_ADDR": address})
        with public_app.app_context():
            assigned.append(
                db.session.query(Lead.assigned_agent_id)
                .filter(Lead.email == f"visitor{i}@example.in")
                .scalar()
            )
    # The free agent (0 open) first; then they are level (1 each): the longer-serving one.
    assert assigned == [free_id, busy_id, free_id]
    with public_app.app_context():  # the lost lead was left where it was
        assert db.session.get(Lead, lost_id).assigned_agent_id == free_id
