"""KYC: prepare, submit, review with four eyes, identifier checks, expiry alerts, the report."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.clients.models import Client, ClientDirector
from app.clients.services import prepare_client
from app.comms.models import Notification
from app.core.types import utcnow
from app.documents.services import find_owner, upload_document
from app.extensions import db
from app.kyc.jobs import check_document_expiry
from app.kyc.models import KycCase
from app.security.scoping import Actor
from app.tasks.models import Task
from tests.support import api_token, count, login, make_branch, make_staff

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
PAN, AADHAAR = "ABCPE1234F", "234123412346"


@pytest.fixture
def desk(pg_app):
    branch = make_branch()
    people = {
        "agent": make_staff("Agent", branch),
        "agent2": make_staff("Agent", branch),
        "officer": make_staff("Compliance", branch),
        "officer2": make_staff("Compliance", branch),
        "admin": make_staff("Admin", branch),
    }
    db.session.commit()
    return people


def actor(staff, role="Agent") -> Actor:
    return Actor(staff.user_id, frozenset({role}), staff.branch_id, staff.user.username)


def auth(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


def make_client(agent, **fields) -> Client:
    record = prepare_client(
        Client(
            name=fields.pop("name", "Asha Verma"),
            email="asha@example.in",
            branch_id=agent.branch_id,
            relationship_manager_id=agent.user_id,
            **fields,
        )
    )
    db.session.add(record)
    db.session.commit()
    return record


def upload(client_record, doc_type, by, expires_on=None):
    document = upload_document(
        find_owner(client_id=client_record.id),
        doc_type,
        f"{doc_type}.pdf",
        PDF,
        expires_on=expires_on,
        actor=actor(by),
    )
    db.session.commit()
    return document


def prepared_case(http, desk, *, documents=("passport", "pan_card", "address_proof"), **ids):
    """An individual client's case opened and submitted by the agent through the API."""
    agent = desk["agent"]
    record = make_client(agent)
    for doc_type in documents:
        upload(record, doc_type, agent, expires_on=utcnow().date() + timedelta(days=400))
    opened = http.post(
        "/api/v1/kyccase/",
        json={"client_id": record.id, "pan": PAN, "aadhaar": AADHAAR, **ids},
        headers=auth(http, agent),
    )
    assert opened.status_code == 201, opened.json
    case_id = opened.json["id"]
    submitted = http.post(f"/api/v1/kyccase/{case_id}/submit", headers=auth(http, agent))
    assert submitted.status_code == 200 and submitted.json["status"] == "in_review"
    return record, case_id


def reason(answer) -> str:
    message = answer.json["message"]
    return message if isinstance(message, str) else next(iter(message.values()))[0]


def test_a_complete_case_is_approved_and_the_client_verified(pg_client, desk):
    record, case_id = prepared_case(pg_client, desk)
    case = db.session.get(KycCase, case_id)
    assert case.reviewer_id in (desk["officer"].user_id, desk["officer2"].user_id)
    approved = pg_client.post(
        f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["officer"])
    )
    assert approved.status_code == 200 and approved.json["status"] == "verified"
    db.session.expire_all()
    assert record.kyc_status == "verified" and record.pan == PAN
    history = [(e.from_status, e.to_status) for e in db.session.get(KycCase, case_id).events]
    assert history == [(None, "pending"), ("pending", "in_review"), ("in_review", "verified")]
    told = db.session.scalars(select(Notification).where(Notification.kind == "kyc_verified")).all()
    assert {n.recipient_user_id for n in told} == {desk["agent"].user_id}
    assert db.session.scalar(
        select(AuditLog).where(
            AuditLog.record_type == "kyc_case",
            AuditLog.record_id == str(case_id),
            AuditLog.changes.contains('"verified"'),
        )
    )
    timeline = pg_client.get(
        f"/api/v1/client/{record.id}/timeline?kind=kyc", headers=auth(pg_client, desk["agent"])
    ).json["result"]
    assert [e["title"] for e in timeline] == [
        f"KYC case #{case_id}: verified",
        f"KYC case #{case_id}: in review",
        f"KYC case #{case_id}: pending",
    ]


def test_the_submitter_cannot_approve_even_as_admin(pg_client, desk):
    admin = desk["admin"]
    record = make_client(desk["agent"])
    for doc_type in ("passport", "pan_card", "address_proof"):
        upload(record, doc_type, desk["agent"])
    headers = auth(pg_client, admin)
    case_id = pg_client.post(
        "/api/v1/kyccase/", json={"client_id": record.id, "pan": PAN}, headers=headers
    ).json["id"]
    pg_client.post(f"/api/v1/kyccase/{case_id}/submit", headers=headers)
    refused = pg_client.post(f"/api/v1/kyccase/{case_id}/approve", headers=headers)
    assert refused.status_code == 403
    assert "four eyes: you prepared this case" in reason(refused)
    # On the screen too, in words.
    login(pg_client, admin.user.username)
    page = pg_client.post(f"/kycqueue/approve/{case_id}", follow_redirects=True)
    assert "four eyes" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(KycCase, case_id).status == "in_review"
    assert record.kyc_status == "pending"


def test_an_uploader_cannot_approve(pg_client, desk):
    officer = desk["officer"]
    record, case_id = prepared_case(pg_client, desk, documents=("passport", "pan_card"))
    upload(record, "address_proof", officer)  # the officer helped by uploading one
    refused = pg_client.post(f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, officer))
    assert refused.status_code == 403 and "you uploaded a document" in reason(refused)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"documents": ("passport", "pan_card")}, "Address proof is missing"),
        ({"pan": "ABCDE12345"}, "PAN 'ABCDE12345' is not valid"),
        ({"aadhaar": "234123412347"}, "Aadhaar '234123412347' is not valid"),
        ({"bank_account": "123456789", "ifsc": "HDFC123"}, "IFSC 'HDFC123' is not valid"),
        ({"bank_account": "123456789", "iban": "GB82WEST12345698765433"}, "IBAN"),
    ],
)
def test_approval_is_refused_naming_the_problem(pg_client, desk, setup, expected):
    _, case_id = prepared_case(pg_client, desk, **setup)
    refused = pg_client.post(
        f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["officer"])
    )
    assert refused.status_code == 409 and expected in reason(refused)
    db.session.expire_all()
    assert db.session.get(KycCase, case_id).status == "in_review"


def test_an_expired_document_blocks_approval(pg_client, desk):
    record, case_id = prepared_case(pg_client, desk)
    upload(record, "address_proof", desk["agent2"], expires_on=utcnow().date())  # v2, expired
    refused = pg_client.post(
        f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["officer"])
    )
    assert refused.status_code == 409
    assert f"Address proof expired on {utcnow().date().isoformat()}" in reason(refused)
    db.session.expire_all()
    assert db.session.get(KycCase, case_id).status == "in_review"


def test_a_company_with_a_bad_abn_is_refused(pg_client, desk):
    agent = desk["agent"]
    company = make_client(
        agent,
        name="Acme",
        client_type="company",
        legal_name="Acme Pty Ltd",
        registration_number="REG-1",
    )
    db.session.add(ClientDirector(client_id=company.id, full_name="Anil Rao"))
    db.session.commit()
    for doc_type in ("company_extract", "director_identity"):
        upload(company, doc_type, agent)
    headers = auth(pg_client, agent)
    case_id = pg_client.post(
        "/api/v1/kyccase/",
        json={"client_id": company.id, "abn": "51 824 753 557"},
        headers=headers,
    ).json["id"]
    pg_client.post(f"/api/v1/kyccase/{case_id}/submit", headers=headers)
    refused = pg_client.post(
        f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["officer"])
    )
    assert refused.status_code == 409 and "ABN '51 824 753 557' is not valid" in reason(refused)
    # Corrected, resubmitted, approved.
    pg_client.post(
        f"/api/v1/kyccase/{case_id}/reject",
        json={"reason": "ABN wrong"},
        headers=auth(pg_client, desk["officer"]),
    )
    fixed = pg_client.put(
        f"/api/v1/kyccase/{case_id}", json={"abn": "51 824 753 556"}, headers=headers
    )
    assert fixed.status_code == 200
    pg_client.post(f"/api/v1/kyccase/{case_id}/submit", headers=headers)
    ok = pg_client.post(
        f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["officer2"])
    )
    assert ok.status_code == 200
    db.session.expire_all()
    assert (company.kyc_status, company.abn) == ("verified", "51824753556")


def test_rejection_needs_a_reason_and_the_case_can_be_resubmitted(pg_client, desk):
    record, case_id = prepared_case(pg_client, desk)
    officer = auth(pg_client, desk["officer"])
    silent = pg_client.post(f"/api/v1/kyccase/{case_id}/reject", json={}, headers=officer)
    assert silent.status_code == 422 and "required" in reason(silent)
    rejected = pg_client.post(
        f"/api/v1/kyccase/{case_id}/reject",
        json={"reason": "Passport photo unreadable"},
        headers=officer,
    )
    assert rejected.json["status"] == "rejected"
    db.session.expire_all()
    assert record.kyc_status == "rejected"
    assert db.session.scalar(
        select(Notification).where(Notification.kind == "kyc_rejected")
    ).body.endswith("Passport photo unreadable")
    again = pg_client.post(
        f"/api/v1/kyccase/{case_id}/submit", headers=auth(pg_client, desk["agent"])
    )
    assert again.json.get("status") == "in_review", again.json
    case = db.session.get(KycCase, case_id)
    assert case.submissions == 2 and case.rejection_reason is None


def test_one_open_case_per_client_and_scoping(pg_client, desk):
    record, case_id = prepared_case(pg_client, desk)
    second = pg_client.post(
        "/api/v1/kyccase/", json={"client_id": record.id}, headers=auth(pg_client, desk["agent"])
    )
    assert second.status_code == 409 and f"#{case_id}" in reason(second)
    other = auth(pg_client, desk["agent2"])
    assert pg_client.get(f"/api/v1/kyccase/{case_id}", headers=other).status_code == 404
    # Agents may not approve at all.
    assert (
        pg_client.post(
            f"/api/v1/kyccase/{case_id}/approve", headers=auth(pg_client, desk["agent"])
        ).status_code
        == 403
    )


def test_the_queue_shows_cases_oldest_first_with_previews(pg_client, desk):
    _, first = prepared_case(pg_client, desk)
    db.session.execute(
        KycCase.__table__.update()
        .where(KycCase.id == first)
        .values(submitted_at=utcnow() - timedelta(days=2))
    )
    db.session.commit()
    agent = desk["agent"]
    other = make_client(agent, name="Ravi Kumar")
    upload(other, "passport", agent)
    second = pg_client.post(
        "/api/v1/kyccase/", json={"client_id": other.id, "pan": PAN}, headers=auth(pg_client, agent)
    ).json["id"]
    pg_client.post(f"/api/v1/kyccase/{second}/submit", headers=auth(pg_client, agent))
    login(pg_client, desk["officer"].user.username)
    page = pg_client.get("/kycqueue/").get_data(as_text=True)
    order = [int(n) for n in re.findall(r'id="kyc-case-(\d+)"', page)]
    assert order == [first, second]
    assert "ABCPXXXX4F" in page and PAN not in page  # identifiers masked
    previews = re.findall(r'class="[^"]*kyc-preview-toggle"\s+data-src="([^"]+)"', page)
    assert previews
    shown = pg_client.get(previews[0])
    assert shown.status_code == 200 and shown.mimetype == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert db.session.scalar(
        select(func.count(AuditLog.id)).where(AuditLog.detail.contains("viewed in page"))
    )


def test_the_expiry_job_alerts_at_30_and_7_days_then_expires_once(pg_app, desk):
    agent = desk["agent"]
    record = make_client(agent)
    today = utcnow().date()
    document = upload(record, "passport", agent, expires_on=today + timedelta(days=30))
    record.kyc_status = "verified"
    db.session.commit()

    def alerts(stage_text):
        return db.session.scalar(
            select(func.count(Notification.id)).where(
                Notification.kind == "kyc_expiry",
                Notification.subject.contains(stage_text),
                Notification.channel == "in_app",
            )
        )

    assert check_document_expiry(today + timedelta(days=1))["30"] == 1
    assert check_document_expiry(today + timedelta(days=2))["30"] == 0  # once
    # The agent and both compliance officers, once each.
    assert alerts("expires in 30 days") == 3
    assert check_document_expiry(today + timedelta(days=23))["7"] == 1
    check_document_expiry(today + timedelta(days=24))
    assert alerts("expires in 7 days") == 3
    assert check_document_expiry(today + timedelta(days=30))["expired"] == 1
    assert check_document_expiry(today + timedelta(days=30))["expired"] == 0
    db.session.expire_all()
    assert record.kyc_status == "expired"
    tasks = db.session.scalars(select(Task).where(Task.client_id == record.id)).all()
    assert [t.title for t in tasks] == ["Re-KYC: Asha Verma (passport expired)"]
    assert tasks[0].assignee_id == agent.user_id
    assert alerts("Expired") == 3
    assert db.session.get(type(document), document.id).expires_on == today + timedelta(days=30)


def test_a_replaced_document_does_not_expire(pg_app, desk):
    agent = desk["agent"]
    record = make_client(agent)
    today = utcnow().date()
    upload(record, "passport", agent, expires_on=today + timedelta(days=5))
    upload(record, "passport", agent, expires_on=today + timedelta(days=3650))  # renewed
    assert check_document_expiry(today) == {"30": 0, "7": 0, "expired": 0}


def test_the_report_counts_and_exports(pg_client, desk):
    record, case_id = prepared_case(pg_client, desk)
    upload(record, "address_proof", desk["agent"], expires_on=utcnow().date() + timedelta(days=45))
    login(pg_client, desk["officer"].user.username)
    page = pg_client.get("/kycreport/").get_data(as_text=True)
    assert "next 30 days: <strong>0</strong>" in page
    assert "next 60 days: <strong>1</strong>" in page
    case = db.session.get(KycCase, case_id)
    assert f"<td>{case.reviewer.username}</td><td>1</td>" in page
    exported = pg_client.get("/kycreport/export.csv")
    text = exported.get_data(as_text=True)
    assert exported.mimetype == "text/csv"
    assert "\r\nExpiring documents\r\n" in text and ",address_proof," in text
    assert db.session.scalar(
        select(AuditLog).where(AuditLog.action == "export", AuditLog.record_type == "kyc_report")
    )
    assert count(KycCase) == 1
