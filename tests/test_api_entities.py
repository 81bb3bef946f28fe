"""Every entity of the domain has its REST API under /api/v1/, and the new record APIs keep the
row scoping of the screens: another agent's (or BDM's) record answers 404 and is not listed."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask_appbuilder.api import ModelRestApi

from app.brokerage.models import Instrument, InstrumentPrice, Position
from app.clients.models import RiskAssessment
from app.comms.services import notify
from app.core.types import utcnow
from app.documents.services import find_owner, upload_document
from app.extensions import db
from app.forex.models import WalletPosting
from app.kyc.models import KycCaseDocument, KycCaseEvent
from app.kyc.services import open_case, submit_case
from app.lending.models import LoanInstalment, LoanParty
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction, Voucher, VoucherRedemption
from app.offers.models import Offer, OfferDelivery
from app.security.scoping import Actor
from tests.billing_support import issued_invoice, make_client
from tests.forex_support import desk
from tests.lending_support import make_settled_loan
from tests.support import api_token, make_branch, make_staff

# Tables that are not business entities: no API, each for a reason a reader can check.
NO_API = {
    "user_session": "each user's session version (sign-out, deactivation and a password change "
    "bump it); nothing to read or write by hand",
    "market_event": "pushed prices and rates kept once by event id; the instrument, instrument "
    "price and FX rate APIs serve what they recorded",
    "summary_campaign_lead": "the campaign attribution summary behind the sales dashboard's chart",
    "periodic_run": "the last run of each periodic job, shown on the Admin home and the jobs page",
    "billing_number_sequence": "the per-year invoice counter, taken under a row lock",
    "kyc_expiry_alert": "once-only keys of the expiry job's alerts",
    "calendar_feed_token": "hashed secrets of ICS feed links (made and revoked on the calendar)",
    "form_submission": "one-time ids of money forms already acted on (a double submit is refused)",
    "summary_lead": "the sales dashboard's counts of leads; the leads and the dashboard reports are the API",
    "summary_application": "the lending dashboard's counts of applications; the applications are the API",
    "summary_instalment": "the lending dashboard's counts of instalments; the schedules are the API",
    "summary_client": "the compliance and brokerage dashboards' counts of clients; the clients are the API",
    "summary_position": "the brokerage dashboard's sums of holdings; the positions are the API",
    "summary_invoice": "the billing dashboard's counts of open invoices; the invoices are the API",
    "summary_exchange": "the forex dashboard's counts of exchanges; the exchanges are the API",
}

# DOMAIN's entities, by the name a reader of DOMAIN.md knows them, and their API.
DOMAIN_APIS = {
    "Branch": "branch",
    "Staff": "staff",
    "Lead": "lead",
    "Lead import": "leadimport",
    "Interaction": "interaction",
    "Client": "client",
    "Contact": "clientcontact",
    "Director": "clientdirector",
    "Risk questionnaire": "riskassessment",
    "Document": "document",
    "KYC case": "kyccase",
    "KYC case history": "kyccaseevent",
    "KYC case documents": "kyccasedocument",
    "Instrument": "instrument",
    "Instrument price": "instrumentprice",
    "Trade": "trade",
    "Holding": "position",
    "Loan product": "loanproduct",
    "Loan product fee": "loanproductfee",
    "Loan application": "loanapplication",
    "Loan party": "loanparty",
    "Loan stage history": "loanstageevent",
    "Loan note": "loannote",
    "Loan fee": "loanfee",
    "Repayment instalment": "loaninstalment",
    "Repayment": "loanrepayment",
    "Repayment allocation": "loanrepaymentallocation",
    "Arrears history": "loanarrearschange",
    "Broker": "broker",
    "Billing product": "billingproduct",
    "Quotation": "quotation",
    "Quotation line": "quotationline",
    "Invoice": "invoice",
    "Invoice line": "invoiceline",
    "Payment": "payment",
    "Contract": "contract",
    "Currency": "currency",
    "FX rate": "fxrate",
    "Wallet": "wallet",
    "Wallet posting": "walletposting",
    "Exchange": "fxexchange",
    "Reserve": "reserve",
    "Voucher": "voucher",
    "Voucher redemption": "voucherredemption",
    "Loyalty account": "loyaltyaccount",
    "Loyalty transaction": "loyalty",
    "Offer": "offer",
    "Offer delivery": "offerdelivery",
    "Ledger account": "account",
    "Journal entry": "journalentry",
    "Journal line": "journalline",
    "Notification (mine)": "notification",
    "Outbox": "outbox",
    "Message log": "messagelog",
    "Notification preference": "notificationpreference",
    "Task": "task",
    "Audit log": "auditlog",
    "API key": "apikey",
}


def _model_apis(app) -> dict[type, list[str]]:
    apis: dict[type, list[str]] = {}
    for view in app.appbuilder.baseviews:
        if isinstance(view, ModelRestApi):
            apis.setdefault(view.datamodel.obj, []).append(view.resource_name)
    return apis


def test_every_mapped_business_model_has_an_api(app):
    apis = _model_apis(app)
    missing = sorted(
        mapper.class_.__tablename__
        for mapper in db.Model.registry.mappers
        if mapper.class_.__module__.startswith("app.")
        and mapper.single is False  # a single-table subclass reads its base's rows and API
        and mapper.class_ not in apis
        and mapper.class_.__tablename__ not in NO_API
    )
    assert not missing, f"models with no API and no reason in NO_API: {missing}"


def test_every_domain_entity_lists_for_admin_over_a_jwt(client, app):
    branch = make_branch()
    make_staff("Admin", branch, "entities_admin")
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_token(client, 'entities_admin')}"}
    for entity, resource in DOMAIN_APIS.items():
        listed = client.get(f"/api/v1/{resource}/", headers=headers)
        assert listed.status_code == 200, (entity, listed.status_code, listed.get_data(True)[:200])
        assert isinstance(listed.json["result"], list), entity


def test_read_only_record_apis_refuse_writes(client, app):
    branch = make_branch()
    make_staff("Admin", branch, "readonly_admin")
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_token(client, 'readonly_admin')}"}
    for resource in ("journalentry", "journalline", "loaninstalment", "payment", "walletposting"):
        assert client.post(f"/api/v1/{resource}/", json={}, headers=headers).status_code in (
            404,
            405,
        ), resource
        assert client.delete(f"/api/v1/{resource}/1", headers=headers).status_code in (404, 405)


# ---- scoping: one agent's records are invisible to another agent ------------------------------

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def _actor(staff) -> Actor:
    return Actor(staff.user_id, frozenset({"Agent"}), staff.branch_id, staff.user.username)


def _records_of(agent) -> dict[str, int]:
    """One record of each scoped record API, all belonging to ``agent``'s clients."""
    client = make_client(agent, name="Scoped Client")
    records: dict[str, int] = {}

    risk = RiskAssessment(client_id=client.id, answers="{}", score=12, profile="moderate")
    db.session.add(risk)

    case = open_case(client.id, _actor(agent))
    db.session.flush()
    upload_document(
        find_owner(client_id=client.id),
        "passport",
        "passport.pdf",
        PDF,
        expires_on=utcnow().date() + timedelta(days=400),
        actor=_actor(agent),
    )
    submit_case(case.id, _actor(agent))

    instrument = Instrument(symbol="SCOPE", name="Scope Ltd", currency="INR", kind="stock")
    db.session.add(instrument)
    db.session.flush()
    position = Position(
        client_id=client.id, instrument_id=instrument.id, quantity=Decimal("5"), cost=Decimal("50")
    )
    db.session.add(position)
    db.session.add(
        InstrumentPrice(
            instrument_id=instrument.id, price=Decimal("10"), as_of=date(2026, 3, 1), source="test"
        )
    )

    account = LoyaltyAccount(client_id=client.id, points=100)
    earned = LoyaltyTransaction(client_id=client.id, points=300, balance_after=300, reason="earn")
    spent = LoyaltyTransaction(client_id=client.id, points=-200, balance_after=100, reason="redeem")
    voucher = Voucher(code="SCOPE-V", name="Scope voucher", points_cost=200)
    db.session.add_all([account, earned, spent, voucher])
    db.session.flush()
    redemption = VoucherRedemption(
        client_id=client.id, voucher_id=voucher.id, points=200, transaction_id=spent.id
    )
    offer = Offer(name="Scope offer", subject="Hello {first_name}", body="An offer")
    db.session.add_all([redemption, offer])
    db.session.flush()
    delivery = OfferDelivery(offer_id=offer.id, client_id=client.id)
    db.session.add(delivery)

    invoice = issued_invoice(client)
    from app.billing import services as billing

    payment = billing.record_payment(invoice.id, {"amount": "100.00", "method": "upi"})
    quotation = billing.create_quotation(
        {
            "client_id": client.id,
            "valid_until": date.today() + timedelta(days=30),
            "lines": [{"description": "Advice", "quantity": "1", "unit_price": "10.00"}],
        }
    )
    db.session.flush()

    records.update(
        riskassessment=risk.id,
        kyccase=case.id,
        kyccaseevent=db.session.query(KycCaseEvent.id).filter_by(case_id=case.id).first()[0],
        kyccasedocument=db.session.query(KycCaseDocument.id).filter_by(case_id=case.id).first()[0],
        position=position.id,
        loyaltyaccount=account.id,
        voucherredemption=redemption.id,
        offerdelivery=delivery.id,
        payment=payment.id,
        invoiceline=invoice.lines[0].id,
        quotationline=quotation.lines[0].id,
    )
    db.session.commit()
    return records


def _get(http, username: str, url: str):
    token = api_token(http, username)
    return http.get(url, headers={"Authorization": f"Bearer {token}"})


def test_an_agent_gets_404_on_another_agents_records_through_each_new_api(client, app):
    branch = make_branch()
    owner = make_staff("Agent", branch, "scope_owner")
    make_staff("Agent", branch, "scope_other")
    db.session.commit()
    records = _records_of(owner)
    owner_token = api_token(client, "scope_owner")
    other_token = api_token(client, "scope_other")
    for resource, pk in records.items():
        if resource in ("payment", "invoiceline"):
            continue  # agents read invoices; checked below with the same rule
        seen = client.get(
            f"/api/v1/{resource}/{pk}", headers={"Authorization": f"Bearer {owner_token}"}
        )
        assert seen.status_code == 200, (resource, seen.status_code, seen.json)
        hidden = client.get(
            f"/api/v1/{resource}/{pk}", headers={"Authorization": f"Bearer {other_token}"}
        )
        assert hidden.status_code == 404, (resource, hidden.status_code)
        listed = client.get(
            f"/api/v1/{resource}/", headers={"Authorization": f"Bearer {other_token}"}
        )
        assert listed.status_code == 200 and listed.json["count"] == 0, (resource, listed.json)
    for resource in ("payment", "invoiceline"):
        pk = records[resource]
        assert _get(client, "scope_owner", f"/api/v1/{resource}/{pk}").status_code == 200
        assert _get(client, "scope_other", f"/api/v1/{resource}/{pk}").status_code == 404


def test_wallet_postings_follow_the_wallets_scope(client, app):
    branch = make_branch()
    owner = make_staff("Agent", branch, "wallet_owner")
    make_staff("Agent", branch, "wallet_other")
    db.session.commit()
    desk(owner)
    posting = db.session.query(WalletPosting).first()
    assert posting is not None
    mine = _get(client, "wallet_owner", "/api/v1/walletposting/")
    theirs = _get(client, "wallet_other", "/api/v1/walletposting/")
    assert [row["wallet_id"] for row in mine.json["result"]] == [posting.wallet_id]
    assert theirs.status_code == 200 and theirs.json["count"] == 0
    hidden = _get(client, "wallet_other", f"/api/v1/walletposting/{posting.journal_line_id}")
    assert hidden.status_code == 404


def test_a_bdm_gets_404_on_another_bdms_loan_records(client, app):
    branch = make_branch()
    bdm = make_staff("LoanOfficer", branch, "loan_bdm")
    make_staff("LoanOfficer", branch, "loan_other_bdm")
    loan = make_settled_loan(bdm, date(2026, 1, 15))
    db.session.commit()
    instalment = db.session.query(LoanInstalment).filter_by(application_id=loan.id).first()
    party = db.session.query(LoanParty).filter_by(application_id=loan.id).first()
    for resource, pk in (("loaninstalment", instalment.id), ("loanparty", party.id)):
        assert _get(client, "loan_bdm", f"/api/v1/{resource}/{pk}").status_code == 200
        assert _get(client, "loan_other_bdm", f"/api/v1/{resource}/{pk}").status_code == 404
    listed = _get(client, "loan_other_bdm", "/api/v1/loaninstalment/")
    assert listed.json["count"] == 0
    shown = _get(client, "loan_bdm", "/api/v1/loaninstalment/?q=(page_size:100)")
    assert shown.json["count"] == 360


def test_notifications_are_the_callers_own_even_for_admin(client, app):
    branch = make_branch()
    agent = make_staff("Agent", branch, "inbox_agent")
    make_staff("Admin", branch, "inbox_admin")
    db.session.commit()
    (note,) = notify(
        "task_assigned",
        "inbox-test",
        "A task for you",
        "Call the client",
        user_id=agent.user_id,
        channels=("in_app",),
    )
    db.session.commit()
    mine = _get(client, "inbox_agent", "/api/v1/notification/")
    assert [row["subject"] for row in mine.json["result"]] == ["A task for you"]
    assert _get(client, "inbox_admin", f"/api/v1/notification/{note.id}").status_code == 404
    token = api_token(client, "inbox_agent")
    read = client.post(
        f"/api/v1/notification/{note.id}/read", headers={"Authorization": f"Bearer {token}"}
    )
    assert read.status_code == 200 and read.json["marked"] == 1
    again = _get(client, "inbox_agent", f"/api/v1/notification/{note.id}")
    assert again.json["result"]["read_at"] is not None
    admin_token = api_token(client, "inbox_admin")
    refused = client.post(
        f"/api/v1/notification/{note.id}/read", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert refused.status_code == 404


def test_my_preferences_over_the_api(client, app):
    branch = make_branch()
    make_staff("Broker", branch, "prefs_broker")
    db.session.commit()
    token = api_token(client, "prefs_broker")
    headers = {"Authorization": f"Bearer {token}"}
    saved = client.put(
        "/api/v1/notification/preferences", json={"sms": True, "digest": "daily"}, headers=headers
    )
    assert saved.status_code == 200, saved.json
    assert saved.json == {"email": True, "sms": True, "in_app": True, "digest": "daily"}
    refused = client.put(
        "/api/v1/notification/preferences", json={"digest": "hourly"}, headers=headers
    )
    assert refused.status_code == 422 and "digest" in refused.json["message"]
    assert client.get("/api/v1/notification/preferences", headers=headers).json["digest"] == "daily"


@pytest.mark.parametrize("resource", ["journalentry", "account"])
def test_an_agent_has_no_ledger_api(client, app, resource):
    branch = make_branch()
    make_staff("Agent", branch, f"ledger_agent_{resource}")
    db.session.commit()
    assert _get(client, f"ledger_agent_{resource}", f"/api/v1/{resource}/").status_code == 403
