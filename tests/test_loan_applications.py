"""Loan applications: one submit with every party (all or nothing), the state machine and its
history, settlement through the API, and who reaches which application (brokers and BDMs)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.ledger.services import trial_balance
from app.lending.models import (
    LoanApplication,
    LoanFee,
    LoanInstalment,
    LoanParty,
    LoanProductFee,
    LoanStageEvent,
)
from tests.lending_support import make_application, make_broker, make_product
from tests.support import api_token, count, login, make_branch, make_staff

VALID_ABN = "51 824 753 556"
BAD_ABN = "51 824 753 557"


@pytest.fixture
def desk(app):
    branch, other_branch = make_branch(), make_branch()
    bdm = make_staff("LoanOfficer", branch)
    bdm2 = make_staff("LoanOfficer", branch)
    broker_user = make_staff("Broker", branch)
    broker2_user = make_staff("Broker", branch)
    product = make_product(name="Home loan")
    db.session.add(
        LoanProductFee(product_id=product.id, fee_type="application", amount=Decimal("600.00"))
    )
    broker = make_broker(branch, broker_user)
    broker.bdms.append(bdm.user)
    broker2 = make_broker(branch, broker2_user)
    broker2.bdms.append(bdm2.user)
    people = {
        "branch": branch,
        "bdm": bdm,
        "bdm2": bdm2,
        "broker_user": broker_user,
        "broker2_user": broker2_user,
        "broker": broker,
        "broker2": broker2,
        "product": product,
        "manager": make_staff("Manager", branch),
        "other_manager": make_staff("Manager", other_branch),
        "agent": make_staff("Agent", branch),
        "admin": make_staff("Admin", branch),
    }
    db.session.commit()
    return people


def auth(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


def person(first: str, last: str, **extra) -> dict:
    return {
        "role": "borrower",
        "party_type": "individual",
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}@example.com",
        "date_of_birth": "1985-04-02",
        "annual_income": "95000",
        **extra,
    }


def payload(desk, abn: str = VALID_ABN) -> dict:
    return {
        "product_id": desk["product"].id,
        "amount": "500000.00",
        "term_months": 360,
        "interest_rate": "5.5",
        "repayment_frequency": "monthly",
        "purpose": "Buy a home",
        "valuer_company": "Acme Valuers",
        "valuer_email": "val@acme.example",
        "qs_company": "Quantity Co",
        "parties": [
            person("Asha", "Verma", tax_id="123 456 782"),
            person("Ravi", "Verma"),
            {
                "role": "guarantor",
                "party_type": "company",
                "company_name": "Verma Holdings Pty Ltd",
                "abn": abn,
                "directors": "Asha Verma\nRavi Verma",
                "guarantees": 1,
            },
        ],
    }


def test_broker_submits_with_every_party_or_nothing(client, desk):
    headers = auth(client, desk["broker_user"])
    refused = client.post("/api/v1/loanapplication/", json=payload(desk, BAD_ABN), headers=headers)
    assert refused.status_code == 422
    assert "parties-2-abn" in refused.json["message"]
    assert "ABN" in refused.json["message"]["parties-2-abn"][0]
    assert count(LoanApplication) == 0 and count(LoanParty) == 0 and count(LoanFee) == 0

    made = client.post("/api/v1/loanapplication/", json=payload(desk), headers=headers)
    assert made.status_code == 201, made.json
    application = db.session.get(LoanApplication, made.json["id"])
    assert application.reference == f"LA-{application.id:06d}"
    assert application.stage == "application"
    # A broker submits as themselves, to the BDM they work with, in that BDM's branch.
    assert application.broker_id == desk["broker"].id
    assert application.bdm_id == desk["bdm"].user_id
    assert application.branch_id == desk["branch"].id
    parties = application.parties
    assert [(p.role, p.party_type, p.name) for p in parties] == [
        ("borrower", "individual", "Asha Verma"),
        ("borrower", "individual", "Ravi Verma"),
        ("guarantor", "company", "Verma Holdings Pty Ltd"),
    ]
    assert parties[2].abn == "51824753556" and parties[2].guarantees.name == "Asha Verma"
    assert parties[0].tax_id_masked.endswith("782") and "123" not in parties[0].tax_id_masked
    fee = db.session.scalar(select(LoanFee).where(LoanFee.application_id == application.id))
    assert (fee.fee_type, fee.amount, fee.status) == ("application", Decimal("600.00"), "waiting")
    first = application.stage_events[0]
    assert (first.from_stage, first.to_stage, first.actor_name) == (
        None,
        "application",
        desk["broker_user"].user.username,
    )


def test_every_problem_is_named_at_once_and_product_limits_hold(client, desk):
    body = payload(desk)
    body.update(amount="10.00", term_months=600, interest_rate="abc")
    body["parties"][1]["email"] = "not-an-email"
    body["parties"][2]["guarantees"] = 3
    answer = client.post(
        "/api/v1/loanapplication/", json=body, headers=auth(client, desk["broker_user"])
    )
    assert answer.status_code == 422
    problems = answer.json["message"]
    assert set(problems) >= {
        "amount",
        "term_months",
        "interest_rate",
        "parties-1-email",
        "parties-2-guarantees",
    }
    assert "50,000" in problems["amount"][0]
    assert count(LoanApplication) == 0


def test_a_broker_cannot_reach_another_brokers_application(client, desk):
    theirs = make_application(desk["bdm2"], product=desk["product"], broker=desk["broker2"])
    mine = make_application(desk["bdm"], product=desk["product"], broker=desk["broker"])
    db.session.commit()
    headers = auth(client, desk["broker_user"])
    assert client.get(f"/api/v1/loanapplication/{theirs.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/loanapplication/{mine.id}", headers=headers).status_code == 200
    listed = client.get("/api/v1/loanapplication/", headers=headers).json
    assert [row["reference"] for row in listed["result"]] == [mine.reference]
    moved = client.post(
        f"/api/v1/loanapplication/{theirs.id}/note", json={"body": "hello"}, headers=headers
    )
    assert moved.status_code == 404

    login(client, desk["broker_user"].user.username)
    assert client.get(f"/loanapplicationview/show/{theirs.id}").status_code == 404
    page = client.get(f"/loanapplicationview/show/{mine.id}")
    assert page.status_code == 200 and mine.reference in page.get_data(as_text=True)
    listing = client.get("/loanapplicationview/list/").get_data(as_text=True)
    assert mine.reference in listing and theirs.reference not in listing


def test_bdm_and_manager_scopes(client, desk):
    first = make_application(desk["bdm"], product=desk["product"])
    second = make_application(desk["bdm2"], product=desk["product"])
    db.session.commit()
    bdm = auth(client, desk["bdm"])
    assert client.get(f"/api/v1/loanapplication/{second.id}", headers=bdm).status_code == 404
    assert client.get(f"/api/v1/loanapplication/{first.id}", headers=bdm).status_code == 200
    manager = auth(client, desk["manager"])
    seen = client.get("/api/v1/loanapplication/", headers=manager).json["result"]
    assert {row["id"] for row in seen} == {first.id, second.id}
    elsewhere = auth(client, desk["other_manager"])
    assert client.get("/api/v1/loanapplication/", headers=elsewhere).json["result"] == []
    agent = auth(client, desk["agent"])
    assert client.get("/api/v1/loanapplication/", headers=agent).status_code == 403


def test_state_machine_refuses_illegal_moves_and_records_each_change(client, desk):
    headers = auth(client, desk["broker_user"])
    made = client.post("/api/v1/loanapplication/", json=payload(desk), headers=headers).json
    url = f"/api/v1/loanapplication/{made['id']}/stage"
    skip = client.post(url, json={"stage": "settled"}, headers=auth(client, desk["bdm"]))
    assert skip.status_code == 409 and "assessment" in str(skip.json["message"])
    assert client.post(url, json={"stage": "assessment"}, headers=headers).status_code == 200
    approve = client.post(url, json={"stage": "approved"}, headers=headers)
    assert approve.status_code == 403, "approval is the BDM's decision, not the broker's"
    bdm = auth(client, desk["bdm"])
    assert client.post(url, json={"stage": "approved"}, headers=bdm).status_code == 200
    no_reason = client.post(url, json={"stage": "declined"}, headers=bdm)
    assert no_reason.status_code == 422 and "note" in no_reason.json["message"]
    events = db.session.scalars(
        select(LoanStageEvent)
        .where(LoanStageEvent.application_id == made["id"])
        .order_by(LoanStageEvent.id)
    ).all()
    assert [(e.from_stage, e.to_stage, e.actor_name) for e in events] == [
        (None, "application", desk["broker_user"].user.username),
        ("application", "assessment", desk["broker_user"].user.username),
        ("assessment", "approved", desk["bdm"].user.username),
    ]
    withdrawn = client.post(
        url, json={"stage": "withdrawn", "note": "client bought elsewhere"}, headers=headers
    )
    assert withdrawn.status_code == 200
    final = client.post(url, json={"stage": "assessment"}, headers=bdm)
    assert final.status_code == 409 and "final" in str(final.json["message"])


def test_bdm_settles_and_records_a_repayment_through_the_api(client, desk):
    made = client.post(
        "/api/v1/loanapplication/", json=payload(desk), headers=auth(client, desk["broker_user"])
    ).json
    bdm = auth(client, desk["bdm"])
    url = f"/api/v1/loanapplication/{made['id']}"
    for stage in ("assessment", "approved"):
        assert client.post(f"{url}/stage", json={"stage": stage}, headers=bdm).status_code == 200
    settled = client.post(
        f"{url}/stage", json={"stage": "settled", "settled_on": "2026-01-31"}, headers=bdm
    )
    assert settled.status_code == 200, settled.json
    instalments = db.session.scalars(
        select(LoanInstalment)
        .where(LoanInstalment.application_id == made["id"])
        .order_by(LoanInstalment.number)
    ).all()
    assert len(instalments) == 360 and instalments[0].total == Decimal("2838.95")
    assert str(instalments[0].due_date) == "2026-02-28"
    paid = client.post(
        f"{url}/repayment", json={"amount": "2838.95", "received_on": "2026-02-27"}, headers=bdm
    )
    assert paid.status_code == 201, paid.json
    assert (paid.json["interest"], paid.json["principal"]) == ("2291.67", "547.28")
    broker = auth(client, desk["broker_user"])
    refused = client.post(f"{url}/repayment", json={"amount": "10"}, headers=broker)
    assert refused.status_code == 403
    rows = trial_balance()
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows) > 0


def test_screen_shows_each_error_beside_its_input_and_saves_nothing(client, desk):
    login(client, desk["broker_user"].user.username)
    form = {
        "product_id": str(desk["product"].id),
        "amount": "500000",
        "term_months": "360",
        "interest_rate": "5.5",
        "repayment_frequency": "monthly",
        "application_type": "purchase",
        "stage": "application",
        "bdm_id": str(desk["bdm"].user_id),
        "broker_id": str(desk["broker"].id),
        "parties-0-role": "borrower",
        "parties-0-party_type": "individual",
        "parties-0-first_name": "Asha",
        "parties-0-last_name": "Verma",
        "parties-1-role": "guarantor",
        "parties-1-party_type": "company",
        "parties-1-company_name": "Verma Holdings",
        "parties-1-abn": BAD_ABN,
        "parties-1-guarantees": "1",
    }
    page = client.post("/loans/new", data=form)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="parties-1-abn-error"' in html and "not a valid ABN" in html
    assert BAD_ABN in html, "what was typed stays in the form"
    assert count(LoanApplication) == 0
    form["parties-1-abn"] = VALID_ABN
    done = client.post("/loans/new", data=form)
    assert done.status_code == 302
    application = db.session.scalars(select(LoanApplication)).one()
    assert done.headers["Location"].endswith(f"/loanapplicationview/show/{application.id}")
    assert len(application.parties) == 2


PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def test_page_actions_note_document_fee_with_invoice_and_payment(client, desk):
    from io import BytesIO

    from app.documents.models import Document

    application = make_application(desk["bdm"], product=desk["product"], broker=desk["broker"])
    db.session.commit()
    show = f"/loanapplicationview/show/{application.id}"

    # The broker adds a note with a reminder and uploads the signed form.
    login(client, desk["broker_user"].user.username)
    client.post(
        f"/loanapplicationview/note/{application.id}",
        data={"body": "Call the valuer", "remind_on": "2099-01-02"},
    )
    client.post(
        f"/loanapplicationview/upload/{application.id}",
        data={"doc_type": "signed_form", "file": (BytesIO(PDF), "signed.pdf")},
        content_type="multipart/form-data",
    )
    page = client.get(show).get_data(as_text=True)
    assert "Call the valuer" in page and "remind 2099-01-02" in page
    document = db.session.scalars(select(Document)).one()
    assert (document.doc_type, document.version) == ("signed_form", 1)
    download = client.get(f"/loanapplicationview/file/{document.id}")
    assert download.status_code == 200 and download.data == PDF
    refused = client.post(
        f"/loanapplicationview/fee/{application.id}", data={"fee_type": "legal", "amount": "1"}
    )
    assert refused.status_code in (302, 403)  # FAB's "access denied": charging fees is the BDM's
    assert count(LoanFee) == 0

    # The BDM charges a valuation fee with its invoice, then marks it paid; paying twice fails.
    client.get("/logout/")
    login(client, desk["bdm"].user.username)
    client.post(
        f"/loanapplicationview/fee/{application.id}",
        data={"fee_type": "valuation", "amount": "450.00", "invoice": (BytesIO(PDF), "inv.pdf")},
        content_type="multipart/form-data",
    )
    fee = db.session.scalars(select(LoanFee).where(LoanFee.fee_type == "valuation")).one()
    assert fee.amount == Decimal("450.00") and fee.invoice_document.doc_type == "invoice"
    client.post(f"/loanapplicationview/fee/{application.id}/pay/{fee.id}", data={})
    db.session.expire_all()
    assert db.session.get(LoanFee, fee.id).status == "paid"
    again = client.post(
        f"/loanapplicationview/fee/{application.id}/pay/{fee.id}", data={}, follow_redirects=True
    )
    assert "already paid" in again.get_data(as_text=True)
    page = client.get(show).get_data(as_text=True)
    assert "Valuation fee on" in page  # the ledger tab lists the charge and the payment


def test_bdm_sees_only_the_brokers_they_work_with(client, desk):
    mine = auth(client, desk["bdm"])
    listed = client.get("/api/v1/broker/", headers=mine).json["result"]
    assert [row["company"] for row in listed] == [desk["broker"].company]
    theirs = client.get(f"/api/v1/broker/{desk['broker2'].id}", headers=mine)
    assert theirs.status_code == 404


def test_loan_terms_are_fixed_once_approved(client, desk):
    application = make_application(desk["bdm"], product=desk["product"], stage="approved")
    db.session.commit()
    answer = client.put(
        f"/api/v1/loanapplication/{application.id}",
        json={"amount": "450000.00"},
        headers=auth(client, desk["bdm"]),
    )
    assert answer.status_code == 409 and "fixed" in str(answer.json["message"])
    db.session.expire_all()
    assert db.session.get(LoanApplication, application.id).amount == Decimal("500000.00")
