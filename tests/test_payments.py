"""Payment links and provider webhooks: the local test gateway runs as a real HTTP service, the
app as another, and events travel between them signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.billing import services as billing
from app.billing.models import Invoice, Payment
from app.extensions import db
from app.forex.models import Wallet
from app.ledger.models import JournalEntry
from app.lending.models import LoanInstalment, LoanRepayment
from app.payments import services
from app.payments.models import PaymentCredit, PaymentEvent, PaymentIntent
from app.payments.providers import (
    SignatureRefused,
    StripeProvider,
    signature_header,
    verify_signature,
)
from app.payments.test_gateway import serve_in_thread, start_gateway
from tests.billing_support import issued_invoice, make_client
from tests.forex_support import make_currencies, make_fx_client
from tests.lending_support import make_settled_loan
from tests.support import count, make_branch, make_staff

SECRET = "whsec_test_0123456789"


@contextmanager
def gateway_for(app, monkeypatch):
    """``app`` served over HTTP, and the test gateway sending it webhooks."""
    server, thread, app_url = serve_in_thread(app)
    running = start_gateway(f"{app_url}/webhooks/payments/test", SECRET)
    monkeypatch.setitem(app.config, "CRM_PAYMENT_PROVIDER", "test")
    monkeypatch.setitem(app.config, "CRM_PAYMENT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setitem(app.config, "CRM_PAYMENT_BASE_URL", running.url)
    send = running.gateway.send

    def send_after_reading(*args, **kwargs):
        # SQLite: the test's open read transaction would block the app's write.
        db.session.rollback()
        return send(*args, **kwargs)

    running.gateway.send = send_after_reading
    try:
        yield running.gateway
    finally:
        running.stop()
        server.shutdown()
        thread.join(5)


@pytest.fixture
def gateway(app, monkeypatch):
    with gateway_for(app, monkeypatch) as running:
        yield running


def invoice_link() -> tuple[Invoice, PaymentIntent]:
    invoice = issued_invoice(make_client())
    intent = services.link_for_invoice(invoice.id)
    db.session.commit()
    return invoice, intent


def refused(action: str = "payment webhook refused") -> list[AuditLog]:
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def fresh(model, pk):
    db.session.expire_all()
    return db.session.get(model, pk)


def signed_post(client, body: dict, secret: str = SECRET, timestamp: int | None = None):
    payload = json.dumps(body).encode()
    return client.post(
        "/webhooks/payments/test",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Test-Signature": signature_header(secret, payload, timestamp),
        },
    )


def test_invoice_paid_end_to_end_over_http_and_replay_pays_once(app, gateway):
    invoice, intent = invoice_link()
    assert intent.amount == D("1195.82") and intent.url.startswith(gateway.base_url)
    assert intent.provider_reference in gateway.intents

    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200, sent["body"]

    invoice = fresh(Invoice, invoice.id)
    assert invoice.status == "paid" and invoice.balance_due == D("0.00")
    payment = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).one()
    assert payment.amount == D("1195.82") and payment.method == "card"
    assert db.session.get(JournalEntry, payment.journal_entry_id) is not None
    intent = fresh(PaymentIntent, intent.id)
    assert intent.status == "succeeded" and intent.payment_id == payment.id
    assert db.session.scalars(
        select(AuditLog).where(
            AuditLog.action == "payment event", AuditLog.record_id == str(intent.id)
        )
    ).first()

    again = gateway.send(
        intent.provider_reference, {"type": "payment.succeeded", "event_id": sent["event_id"]}
    )
    assert again["status"] == 200 and "duplicate" in again["body"]
    second = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert second["status"] == 200 and "nothing paid" in second["body"]
    assert count(Payment) == 1
    assert fresh(Invoice, invoice.id).amount_paid == D("1195.82")


def test_forged_signature_is_refused_and_writes_nothing(app, gateway):
    invoice, intent = invoice_link()
    before = len(refused())
    sent = gateway.send(
        intent.provider_reference, {"type": "payment.succeeded", "secret": "forged"}
    )
    assert sent["status"] == 401 and "does not match" in sent["body"]
    assert count(PaymentEvent) == 0 and count(Payment) == 0
    assert fresh(Invoice, invoice.id).status == "issued"
    assert len(refused()) == before + 1


def test_stale_timestamp_is_refused(app, gateway):
    invoice, intent = invoice_link()
    stale = int(time.time()) - 301
    sent = gateway.send(
        intent.provider_reference, {"type": "payment.succeeded", "timestamp": stale}
    )
    assert sent["status"] == 400 and "tolerance" in sent["body"]
    assert count(PaymentEvent) == 0 and count(Payment) == 0


def test_amount_mismatch_is_refused_and_pays_nothing(app, gateway):
    invoice, intent = invoice_link()
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded", "amount": "10.00"})
    assert sent["status"] == 422 and "10.00" in sent["body"]
    assert count(Payment) == 0 and count(PaymentEvent) == 0
    assert fresh(PaymentIntent, intent.id).status == "pending"


def test_unknown_intent_is_404(app, client, gateway):
    response = signed_post(
        client,
        {"id": "evt_x", "type": "payment.succeeded", "data": {"reference": "tp_nope"}},
    )
    assert response.status_code == 404
    assert count(PaymentEvent) == 0


def test_overpayment_is_parked_as_a_credit(app, gateway):
    invoice, intent = invoice_link()
    billing.record_payment(invoice.id, {"amount": "100.00"})  # typed in by staff meanwhile
    db.session.commit()
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200 and "parked" in sent["body"]
    credit = db.session.scalars(select(PaymentCredit)).one()
    assert credit.amount == D("1195.82") and credit.status == "open"
    assert "more than the balance due" in credit.reason
    assert fresh(Invoice, invoice.id).amount_paid == D("100.00")
    assert fresh(PaymentIntent, intent.id).status == "parked"
    assert refused("payment parked")


def test_failed_event_marks_the_link_failed(app, gateway):
    invoice, intent = invoice_link()
    sent = gateway.send(intent.provider_reference, {"type": "payment.failed"})
    assert sent["status"] == 200
    assert fresh(PaymentIntent, intent.id).status == "failed"
    assert fresh(Invoice, invoice.id).status == "issued" and count(Payment) == 0


def test_refund_reverses_the_payment(app, gateway):
    invoice, intent = invoice_link()
    gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    sent = gateway.send(intent.provider_reference, {"type": "payment.refunded"})
    assert sent["status"] == 200, sent["body"]
    intent = fresh(PaymentIntent, intent.id)
    assert intent.status == "refunded"
    reversal = db.session.get(JournalEntry, intent.refund_entry_id)
    assert reversal.reverses_id == intent.journal_entry_id
    invoice = fresh(Invoice, invoice.id)
    assert invoice.status == "issued" and invoice.amount_paid == D("0.00")


def test_refund_before_payment_never_pays(app, gateway):
    invoice, intent = invoice_link()
    gateway.send(intent.provider_reference, {"type": "payment.refunded"})
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200 and "nothing paid" in sent["body"]
    assert count(Payment) == 0


def test_instalment_paid_through_the_lending_service(app, gateway):
    bdm = make_staff("LoanOfficer", make_branch(tz="UTC"))
    loan = make_settled_loan(
        bdm, date(2026, 1, 15), amount=D("12000.00"), term_months=12, interest_rate=D("12")
    )
    db.session.commit()
    intent = services.link_for_instalment(loan.id)
    db.session.commit()
    assert intent.amount == D("1066.19")
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200, sent["body"]
    repayment = db.session.scalars(select(LoanRepayment)).one()
    assert repayment.amount == D("1066.19")
    first = db.session.scalars(select(LoanInstalment).where(LoanInstalment.number == 1)).one()
    assert first.status == "paid"


def test_wallet_top_up_paid_through_the_deposit_service(app, gateway):
    make_currencies("INR", "USD")
    agent = make_staff("Agent", make_branch(tz="UTC"))
    wallet = Wallet(client_id=make_fx_client(agent).id, currency="USD", balance=D("0.00"))
    db.session.add(wallet)
    db.session.commit()
    intent = services.link_for_wallet_top_up(wallet.id, "250.00")
    db.session.commit()
    sent = gateway.send(intent.provider_reference, {"type": "payment.succeeded"})
    assert sent["status"] == 200, sent["body"]
    assert fresh(Wallet, wallet.id).balance == D("250.00")
    assert fresh(PaymentIntent, intent.id).journal_entry_id is not None


def test_stripe_signature_matches_a_vector_computed_with_hmac(app, monkeypatch):
    payload = b'{"id":"evt_1","type":"checkout.session.completed"}'
    t = 1_700_000_000
    expected = hmac.new(b"whsec_abc", f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    header = f"t={t},v1={expected}"
    assert verify_signature("whsec_abc", payload, header, 300, now=t + 10) == t
    with pytest.raises(SignatureRefused) as stale:
        verify_signature("whsec_abc", payload, header, 300, now=t + 301)
    assert stale.value.status == 400
    with pytest.raises(SignatureRefused):
        verify_signature("whsec_abc", payload + b" ", header, 300, now=t)
    monkeypatch.setitem(app.config, "CRM_PAYMENT_WEBHOOK_SECRET", "whsec_abc")
    StripeProvider().verify(payload, {"Stripe-Signature": header}, now=t)
    event = StripeProvider().parse_event(
        json.dumps(
            {
                "id": "evt_1",
                "type": "checkout.session.completed",
                "data": {
                    "object": {
                        "id": "cs_1",
                        "amount_total": 119582,
                        "currency": "inr",
                        "payment_status": "paid",
                        "metadata": {"fincrm_intent": "7"},
                    }
                },
            }
        ).encode()
    )
    assert (event.type, event.reference, event.amount, event.currency, event.intent_id) == (
        "succeeded",
        "cs_1",
        D("1195.82"),
        "INR",
        7,
    )


def test_api_payment_link_for_an_invoice_needs_repay(app, client, gateway):
    from tests.support import api_token

    manager = make_staff("Manager", make_branch(tz="UTC"))
    agent = make_staff("Agent", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(agent=None))
    invoice.client.branch_id = manager.branch_id
    db.session.commit()
    invoice_id, manager_name, agent_name = invoice.id, manager.user.username, agent.user.username
    db.session.rollback()
    denied = client.post(
        f"/api/v1/invoice/{invoice_id}/payment-link",
        json={},
        headers={"Authorization": f"Bearer {api_token(client, agent_name)}"},
    )
    assert denied.status_code in (403, 404)
    made = client.post(
        f"/api/v1/invoice/{invoice_id}/payment-link",
        json={},
        headers={"Authorization": f"Bearer {api_token(client, manager_name)}"},
    )
    assert made.status_code == 201, made.json
    assert made.json["amount"] == "1195.82" and made.json["url"].startswith(gateway.base_url)


def test_invoice_page_makes_a_payment_link(app, client, gateway):
    from tests.support import login

    manager = make_staff("Manager", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(agent=None))
    invoice.client.branch_id = manager.branch_id
    db.session.commit()
    invoice_id, name = invoice.id, manager.user.username
    db.session.rollback()
    login(client, name)
    page = client.get(f"/invoiceview/show/{invoice_id}")
    assert b"payment-link" in page.data
    done = client.post(f"/invoiceview/payment-link/{invoice_id}", follow_redirects=True)
    assert done.status_code == 200 and gateway.base_url.encode() in done.data
    assert count(PaymentIntent) == 1
