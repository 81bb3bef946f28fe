"""Payment links at scale of use: deliveries racing on PostgreSQL, parked credits reviewed and
resolved (screens and API), and the payment-link buttons of the loan and wallet pages."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal as D

import pytest
import requests
from sqlalchemy import select

from app.audit.models import AuditLog
from app.billing import services as billing
from app.billing.models import Invoice, Payment
from app.extensions import db
from app.forex.models import Wallet
from app.payments import services
from app.payments.models import PaymentCredit, PaymentEvent, PaymentIntent
from app.payments.providers import signature_header
from tests.billing_support import issued_invoice, make_client
from tests.forex_support import make_currencies, make_fx_client
from tests.lending_support import make_settled_loan
from tests.support import api_token, count, login, make_branch, make_staff
from tests.test_payments import SECRET, fresh, gateway_for

DELIVERIES = 8


@pytest.fixture
def gateway(app, monkeypatch):
    with gateway_for(app, monkeypatch) as running:
        yield running


@pytest.fixture
def pg_gateway(pg_app, monkeypatch):
    with gateway_for(pg_app, monkeypatch) as running:
        yield running


def _event(intent: PaymentIntent, event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "data": {
                "reference": intent.provider_reference,
                "amount": str(intent.amount),
                "currency": intent.currency,
            },
        }
    ).encode()


def _deliver_at_once(url: str, payloads: list[bytes]) -> list[dict]:
    """POST every payload to the webhook at the same moment, each from its own thread."""
    start = threading.Barrier(len(payloads))
    answers: list[dict] = []

    def deliver(payload: bytes) -> None:
        start.wait()
        response = requests.post(
            url,
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Test-Signature": signature_header(SECRET, payload, None),
            },
            timeout=60,
        )
        answers.append({"http": response.status_code, **response.json()})

    threads = [threading.Thread(target=deliver, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return answers


def _manager_and_invoice(branch=None):
    manager = make_staff("Manager", branch or make_branch(tz="UTC"))
    client = make_client(agent=make_staff("Agent", manager.branch))
    invoice = issued_invoice(client)  # 1,195.82
    return manager, client, invoice


def _parked_credit(gateway, invoice: Invoice) -> PaymentCredit:
    """A link for the invoice's balance, then staff record 100.00 by hand: the provider's
    payment no longer fits and is parked."""
    intent = services.link_for_invoice(invoice.id)
    db.session.commit()
    billing.record_payment(invoice.id, {"amount": "100.00"})
    db.session.commit()
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200 and "parked" in sent["body"], sent
    return db.session.scalars(select(PaymentCredit)).one()


def _audit(action: str) -> list[AuditLog]:
    return db.session.scalars(
        select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


# ---- deliveries racing, on PostgreSQL -------------------------------------------------------


def test_one_event_delivered_eight_times_at_once_pays_once(pg_app, pg_gateway):
    invoice = issued_invoice(make_client())
    intent = services.link_for_invoice(invoice.id)
    db.session.commit()
    payload = _event(intent, "evt_same_at_once")
    db.session.rollback()

    answers = _deliver_at_once(pg_gateway.webhook_url, [payload] * DELIVERIES)

    assert len(answers) == DELIVERIES and all(a["http"] == 200 for a in answers), answers
    kinds = sorted(a["status"] for a in answers)
    assert kinds == ["applied"] + ["duplicate"] * (DELIVERIES - 1), answers
    applied = [a for a in answers if a["status"] == "applied"]
    assert applied[0]["intent"] == intent.id and applied[0]["outcome"].startswith("paid")
    db.session.expire_all()
    assert count(Payment) == 1 and count(PaymentEvent) == 1
    paid = db.session.get(Invoice, invoice.id)
    assert paid.status == "paid" and paid.amount_paid == D("1195.82")


def test_different_success_events_at_once_pay_once(pg_app, pg_gateway):
    invoice = issued_invoice(make_client())
    intent = services.link_for_invoice(invoice.id)
    db.session.commit()
    payloads = [_event(intent, f"evt_race_{n}") for n in range(DELIVERIES)]
    db.session.rollback()

    answers = _deliver_at_once(pg_gateway.webhook_url, payloads)

    assert len(answers) == DELIVERIES and all(a["http"] == 200 for a in answers), answers
    outcomes = sorted(a["outcome"] for a in answers)
    assert sum(o.startswith("paid") for o in outcomes) == 1, outcomes
    assert sum(o.startswith("nothing paid") for o in outcomes) == DELIVERIES - 1, outcomes
    db.session.expire_all()
    assert count(Payment) == 1 and count(PaymentEvent) == DELIVERIES
    assert db.session.get(Invoice, invoice.id).amount_paid == D("1195.82")


def test_parked_credit_applied_to_the_clients_next_invoice_over_the_api(
    pg_app, pg_client, pg_gateway
):
    manager, client, invoice = _manager_and_invoice()
    credit = _parked_credit(pg_gateway, invoice)
    second = issued_invoice(client)
    credit_id, second_id, name = credit.id, second.id, manager.user.username
    db.session.rollback()
    headers = {"Authorization": f"Bearer {api_token(pg_client, name)}"}

    listed = pg_client.get("/api/v1/paymentcredit/", headers=headers)
    assert listed.status_code == 200 and listed.json["ids"] == [credit_id]
    links = pg_client.get("/api/v1/paymentintent/", headers=headers)
    assert [r["status"] for r in links.json["result"]] == ["parked"]
    events = pg_client.get("/api/v1/paymentevent/", headers=headers)
    assert "parked as credit" in events.json["result"][0]["outcome"]

    done = pg_client.post(
        f"/api/v1/paymentcredit/{credit_id}/resolve",
        json={"resolution": "applied", "invoice_id": second_id},
        headers=headers,
    )
    assert done.status_code == 200, done.json
    assert done.json["status"] == "resolved" and done.json["applied_payment_id"]
    payment = db.session.get(Payment, done.json["applied_payment_id"])
    assert payment.invoice_id == second_id and payment.amount == D("1195.82")
    assert payment.reference == f"parked credit #{credit_id}"
    assert db.session.get(Invoice, second_id).status == "paid"
    assert _audit("payment credit resolved")

    again = pg_client.post(
        f"/api/v1/paymentcredit/{credit_id}/resolve",
        json={"resolution": "refunded", "note": "re_123"},
        headers=headers,
    )
    assert again.status_code == 409 and "already resolved" in json.dumps(again.json)
    assert count(Payment) == 2  # the staff payment and the applied credit, nothing more


# ---- refusals of a resolution: 4xx, nothing written -----------------------------------------


def test_a_resolution_that_cannot_be_done_is_refused_and_writes_nothing(app, client, gateway):
    manager, paying, invoice = _manager_and_invoice()
    credit = _parked_credit(gateway, invoice)
    other_client = make_client(agent=make_staff("Agent", manager.branch), name="Ravi Iyer")
    others = issued_invoice(other_client)
    small = issued_invoice(paying)
    billing.record_payment(small.id, {"amount": "1000.00"})  # 195.82 left: the credit won't fit
    agent = make_staff("Agent", manager.branch)
    elsewhere = make_staff("Manager", make_branch(tz="UTC"))
    db.session.commit()
    ids = (credit.id, others.id, small.id)
    names = (manager.user.username, agent.user.username, elsewhere.user.username)
    payments_before = count(Payment)
    db.session.rollback()
    headers = {"Authorization": f"Bearer {api_token(client, names[0])}"}

    def resolve(body, pk=ids[0], who=headers):
        return client.post(f"/api/v1/paymentcredit/{pk}/resolve", json=body, headers=who)

    cases = [
        ({"resolution": "applied", "invoice_id": ids[1]}, 422, "not the paying client"),
        ({"resolution": "applied", "invoice_id": ids[2]}, 422, "balance due"),
        ({"resolution": "applied"}, 422, "name one invoice"),
        ({"resolution": "applied", "invoice_id": "x1"}, 422, "not a record number"),
        ({"resolution": "refunded"}, 422, "refund's reference"),
        ({"resolution": "written_off"}, 422, "resolution"),
    ]
    for body, status, words in cases:
        answer = resolve(body)
        assert answer.status_code == status and words in json.dumps(answer.json), (body, answer)
    assert resolve({"resolution": "refunded", "note": "re_9"}, pk=99999).status_code == 404
    agent_headers = {"Authorization": f"Bearer {api_token(client, names[1])}"}
    assert resolve({"resolution": "refunded", "note": "re_1"}, who=agent_headers).status_code in (
        403,
        404,
    )
    other_branch = {"Authorization": f"Bearer {api_token(client, names[2])}"}
    assert resolve({"resolution": "refunded", "note": "re_1"}, who=other_branch).status_code == 404

    assert fresh(PaymentCredit, ids[0]).status == "open"
    assert count(Payment) == payments_before
    assert len(_audit("rejected")) >= len(cases)


# ---- screens --------------------------------------------------------------------------------


def test_finance_screens_show_links_and_resolve_a_credit_as_refunded(app, client, gateway):
    manager, _, invoice = _manager_and_invoice()
    credit = _parked_credit(gateway, invoice)
    credit_id, intent_id, name = credit.id, credit.intent_id, manager.user.username
    db.session.rollback()
    login(client, name)

    home = client.get("/paymentintentview/list/").get_data(as_text=True)
    assert "Payment links" in home and "Parked credits" in home  # the Finance menu
    shown = client.get(f"/paymentintentview/show/{intent_id}").get_data(as_text=True)
    assert "payment-events" in shown and "parked as credit" in shown
    assert f"/invoiceview/show/{invoice.id}" in shown and f"Credit #{credit_id}" in shown
    page = client.get(f"/paymentcreditview/show/{credit_id}").get_data(as_text=True)
    assert "credit-resolve-form" in page and "more than the balance due" in page

    refused = client.post(
        f"/paymentcreditview/resolve/{credit_id}",
        data={"resolution": "refunded"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Not done" in refused and "refund&#39;s reference" in refused
    assert fresh(PaymentCredit, credit_id).status == "open"

    done = client.post(
        f"/paymentcreditview/resolve/{credit_id}",
        data={"resolution": "refunded", "note": "re_3PxQ77"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Credit #{credit_id} resolved" in done and "credit-resolve-form" not in done
    resolved = fresh(PaymentCredit, credit_id)
    assert resolved.status == "resolved" and resolved.resolution == "refunded"
    assert "re_3PxQ77" in resolved.resolution_note and resolved.resolved_by_id is not None


def test_the_agent_reads_links_but_has_no_parked_credits(app, client, gateway):
    manager, _, invoice = _manager_and_invoice()
    credit = _parked_credit(gateway, invoice)
    agent = make_staff("Agent", manager.branch)
    db.session.commit()
    credit_id, name = credit.id, agent.user.username
    db.session.rollback()
    login(client, name)
    assert client.get("/paymentintentview/list/").status_code == 200
    page = client.get(f"/paymentcreditview/show/{credit_id}")
    assert page.status_code in (302, 403)
    client.post(f"/paymentcreditview/resolve/{credit_id}", data={"resolution": "refunded"})
    assert fresh(PaymentCredit, credit_id).status == "open"


def test_loan_application_page_makes_a_link_for_the_next_instalment(app, client, gateway):
    bdm = make_staff("LoanOfficer", make_branch(tz="UTC"))
    loan = make_settled_loan(
        bdm, date(2026, 1, 15), amount=D("12000.00"), term_months=12, interest_rate=D("12")
    )
    db.session.commit()
    loan_id, name = loan.id, bdm.user.username
    db.session.rollback()
    login(client, name)
    page = client.get(f"/loanapplicationview/show/{loan_id}").get_data(as_text=True)
    assert "Payment link for the next instalment due" in page
    done = client.post(
        f"/loanapplicationview/payment-link/{loan_id}", data={}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Payment link for 1,066.19" in done and gateway.base_url in done
    intent = db.session.scalars(select(PaymentIntent)).one()
    assert intent.application_id == loan_id and intent.amount == D("1066.19")


def test_wallet_page_makes_a_top_up_link_and_refuses_a_bad_amount(app, client, gateway):
    make_currencies("INR", "USD")
    manager = make_staff("Manager", make_branch(tz="UTC"))
    wallet = Wallet(
        client_id=make_fx_client(make_staff("Agent", manager.branch)).id,
        currency="USD",
        balance=D("0.00"),
    )
    db.session.add(wallet)
    db.session.commit()
    wallet_id, name = wallet.id, manager.user.username
    db.session.rollback()
    login(client, name)
    assert "Payment link for a top-up" in client.get(f"/walletview/show/{wallet_id}").get_data(
        as_text=True
    )
    bad = client.post(
        f"/walletview/payment-link/{wallet_id}", data={"amount": "ten"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Not done" in bad and count(PaymentIntent) == 0
    done = client.post(
        f"/walletview/payment-link/{wallet_id}", data={"amount": "250.00"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Payment link for 250.00 USD" in done
    assert db.session.scalars(select(PaymentIntent)).one().wallet_id == wallet_id
