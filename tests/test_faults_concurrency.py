"""Two people (or one person's double click) acting on the same thing at the same moment, over
HTTP on PostgreSQL: one wins, the others get a clear answer, and the books stay consistent."""

from __future__ import annotations

import re
import threading
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app.billing.models import Invoice, Payment
from app.clients.models import Client
from app.extensions import db
from app.forex import wallets
from app.forex.models import Wallet
from app.kyc.models import KycCase, KycCaseEvent
from app.leads.models import Lead
from app.ledger import services as ledger
from app.lending.models import LoanRepayment
from tests.billing_support import issued_invoice, make_client
from tests.forex_support import desk as fx_desk
from tests.lending_support import make_settled_loan
from tests.support import count, login, make_branch, make_lead, make_staff
from tests.test_kyc import auth, prepared_case
from tests.test_kyc import desk as desk  # noqa: F401  (the KYC desk fixture)


def at_once(requests_to_send):
    """Send each request from its own thread, all released together; returns the responses
    in the order given."""
    start = threading.Barrier(len(requests_to_send))
    answers = [None] * len(requests_to_send)

    def send(index, request):
        start.wait()
        answers[index] = request()

    threads = [
        threading.Thread(target=send, args=(i, request))
        for i, request in enumerate(requests_to_send)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def flashes(client) -> str:
    """The messages shown on the next page the user sees."""
    with client.session_transaction() as session:
        return " ".join(message for _, message in session.get("_flashes", []))


def balanced() -> bool:
    rows = ledger.trial_balance()
    return sum(r.debit for r in rows) == sum(r.credit for r in rows)


# ---- double-submitted forms ------------------------------------------------------------------


def test_a_repayment_form_sent_twice_at_once_records_one_repayment(pg_app):
    bdm = make_staff("LoanOfficer", make_branch(tz="UTC"))
    loan = make_settled_loan(
        bdm,
        date(2026, 1, 15),
        amount=Decimal("12000.00"),
        term_months=12,
        interest_rate=Decimal("12"),
    )
    db.session.commit()
    tabs = [pg_app.test_client() for _ in range(2)]  # the same user, two copies of one POST
    for tab in tabs:
        login(tab, bdm.user.username)
    page = tabs[0].get(f"/loanapplicationview/show/{loan.id}").get_data(as_text=True)
    (token,) = re.findall(r'name="submission_id" value="([^"]+)"', page)
    form = {
        "amount": "1500.00",
        "received_on": "2026-02-15",
        "method": "bank_transfer",
        "reference": "UTR-1",
        "submission_id": token,
    }
    url = f"/loanapplicationview/repayment/{loan.id}"

    answers = at_once([lambda tab=tab: tab.post(url, data=form) for tab in tabs])

    assert [answer.status_code for answer in answers] == [302, 302]
    said = [flashes(tab) for tab in tabs]
    assert sum("Repayment of 1,500.00 recorded" in text for text in said) == 1
    assert sum("was already sent and acted on once" in text for text in said) == 1
    db.session.expire_all()
    assert count(LoanRepayment) == 1
    assert balanced()

    # The page sent again later (the browser's back button and resend) is refused the same way;
    # a fresh form from the page records a second, deliberate repayment.
    tabs[0].post(url, data=form)
    assert "was already sent and acted on once" in flashes(tabs[0])
    page = tabs[0].get(f"/loanapplicationview/show/{loan.id}").get_data(as_text=True)
    (fresh,) = re.findall(r'name="submission_id" value="([^"]+)"', page)
    assert fresh != token
    tabs[0].post(url, data={**form, "submission_id": fresh})
    db.session.expire_all()
    assert count(LoanRepayment) == 2
    assert balanced()


def test_a_conversion_sent_twice_at_once_makes_one_client_and_tells_the_other(pg_app):
    agent = make_staff("Agent", make_branch())
    lead = make_lead(agent, first_name="Asha", last_name="Verma")
    lead.status = "qualified"
    db.session.commit()
    lead_id = lead.id
    tabs = [pg_app.test_client() for _ in range(2)]
    for tab in tabs:
        login(tab, agent.user.username)

    answers = at_once([lambda tab=tab: tab.post(f"/leadview/convert/{lead_id}") for tab in tabs])

    landed = [a.headers.get("Location", "") for a in answers]
    assert sum("/clientview/timeline/" in where for where in landed) == 1
    said = sorted(flashes(tab) for tab in tabs)
    assert said[0].startswith("Converted: Asha Verma is now client")
    assert "this lead was already converted to client" in said[1]
    db.session.expire_all()
    assert count(Client) == 1
    assert db.session.get(Lead, lead_id).status == "converted"


def test_an_invoice_payment_form_sent_twice_records_one_payment(pg_app, pg_client):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(make_staff("Agent", manager.branch)))
    login(pg_client, manager.user.username)
    page = pg_client.get(f"/invoiceview/show/{invoice.id}").get_data(as_text=True)
    (token,) = re.findall(r'name="submission_id" value="([^"]+)"', page)
    form = {"amount": "195.82", "method": "cash", "submission_id": token}

    first = pg_client.post(f"/invoiceview/payment/{invoice.id}", data=form, follow_redirects=True)
    again = pg_client.post(f"/invoiceview/payment/{invoice.id}", data=form, follow_redirects=True)

    assert "balance due 1,000.00" in first.get_data(as_text=True)
    assert "was already sent and acted on once" in again.get_data(as_text=True)
    assert count(Payment) == 1
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).balance_due == Decimal("1000.00")
    assert balanced()


def test_a_wallet_deposit_sent_twice_at_once_deposits_once(pg_app):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    client = fx_desk(make_staff("Agent", manager.branch))  # a USD wallet holding 1,000.00
    wallet_id = wallets.wallet_for(client.id, "USD", create=False).id
    tabs = [pg_app.test_client() for _ in range(2)]
    for tab in tabs:
        login(tab, manager.user.username)
    page = tabs[0].get(f"/walletview/show/{wallet_id}").get_data(as_text=True)
    token = re.findall(r'name="submission_id" value="([^"]+)"', page)[0]  # the deposit form
    form = {"amount": "250.00", "memo": "cash at the counter", "submission_id": token}

    at_once(
        [lambda tab=tab: tab.post(f"/walletview/deposit/{wallet_id}", data=form) for tab in tabs]
    )

    said = sorted(flashes(tab) for tab in tabs)
    assert said[0] == "Deposited: the USD wallet holds 1,250.00."
    assert "was already sent and acted on once" in said[1]
    db.session.expire_all()
    wallet = db.session.get(Wallet, wallet_id)
    assert wallet.balance == Decimal("1250.00") == wallets.ledger_balance(wallet)
    assert balanced()


# ---- concurrent approvals --------------------------------------------------------------------


def test_kyc_approvals_and_a_rejection_at_once_one_decision_stands(pg_app, desk):  # noqa: F811
    http = pg_app.test_client()
    record, case_id = prepared_case(http, desk)
    officers = [desk["officer"], desk["officer2"], desk["officer"]]
    headers = [auth(http, officer) for officer in officers]
    clients = [pg_app.test_client() for _ in range(4)]
    answers = at_once(
        [
            *(
                lambda c=c, h=h: c.post(f"/api/v1/kyccase/{case_id}/approve", headers=h)
                for c, h in zip(clients, headers, strict=False)
            ),
            lambda: clients[3].post(
                f"/api/v1/kyccase/{case_id}/reject",
                json={"reason": "The address proof is older than three months."},
                headers=headers[1],
            ),
        ]
    )

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409, 409, 409], [(a.status_code, a.json) for a in answers]
    (winner,) = [a for a in answers if a.status_code == 200]
    for loser in (a for a in answers if a.status_code == 409):
        assert "only a case in review" in str(loser.json["message"])
    db.session.expire_all()
    case = db.session.get(KycCase, case_id)
    assert case.status == winner.json["status"]
    decisions = db.session.scalars(
        select(KycCaseEvent).where(
            KycCaseEvent.case_id == case_id, KycCaseEvent.from_status == "in_review"
        )
    ).all()
    assert len(decisions) == 1
    assert db.session.get(Client, record.id).kyc_status == case.status
