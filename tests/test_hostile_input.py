"""Hostile input at every desk: look-alike and invisible characters, NUL bytes, huge fields,
absurd amounts and impossible dates. Each is answered with a 4xx naming the field (or a form
error), nothing is written, and the refusal is in the audit log."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.billing.models import Invoice, Payment
from app.brokerage.models import Trade
from app.clients.models import Client
from app.core.validators import clean_name
from app.extensions import db
from app.forex.models import FxExchange, Wallet, WalletPosting
from app.kyc.models import KycCase
from app.kyc.services import open_case
from app.leads.models import Lead
from app.lending.models import LoanApplication, LoanRepayment
from tests.billing_support import issued_invoice, make_client
from tests.billing_support import two_lines as invoice_lines
from tests.forex_support import desk as forex_desk
from tests.hostile_support import (
    assert_refusal_audited,
    audit_mark,
    bearer,
    raw_json,
    with_value,
)
from tests.lending_support import make_product, make_settled_loan
from tests.support import count, login, make_branch, make_staff
from tests.test_brokerage import make_instrument

LEAD = {"first_name": "Asha", "last_name": "Verma", "email": "asha@example.com"}
CYRILLIC_A = "\u0430"  # looks like the Latin "a"


ROLES = {"agent": "Agent", "manager": "Manager", "loanofficer": "LoanOfficer"}
ROLES["compliance"] = "Compliance"


class Staff(dict):
    """One member of staff per role in one branch, made when a test first asks for the role."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = make_branch(tz="UTC")

    def __missing__(self, key: str):
        self[key] = make_staff(ROLES[key], self.branch)
        db.session.commit()
        return self[key]


@pytest.fixture
def staff(app):
    return Staff()


# ---- names and e-mail addresses: look-alikes, invisible characters, NUL, huge text ----------


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("first_name", f"{CYRILLIC_A}sha", "different scripts"),
        ("last_name", "Ver\u200bma", "zero-width space"),
        ("last_name", "Ver\u200dma", "zero-width joiner"),
        ("first_name", "\ufeffAsha", "byte-order mark"),
        ("email", f"asha@ex{CYRILLIC_A}mple.com", "different scripts"),
        ("email", f"{CYRILLIC_A}sha@example.com", "different scripts"),
        ("email", "asha\u200b@example.com", "zero-width space"),
        ("email", "a" * 290 + "@example.com", "254"),
        ("notes", "pay to \u202egpj.exe", "U+202E"),
        ("company", "Acme\x00Ltd", "NUL"),
        ("notes", "x" * 10_001, "too long"),
        ("first_name", "<img src=x onerror=alert(1)>", "not markup"),
        ("last_name", "Verma<script>", "not markup"),
        ("company", "<b>Acme</b> Ltd", "not markup"),
    ],
)
def test_lead_api_refuses_hostile_text_naming_the_field(app, staff, field, value, words):
    http = app.test_client()
    headers = bearer(http, staff["agent"])
    mark = audit_mark()
    answer = http.post("/api/v1/lead/", json={**LEAD, field: value}, headers=headers)
    assert answer.status_code == 422, answer.json
    assert words in " ".join(answer.json["message"][field])
    assert count(Lead) == 0
    assert_refusal_audited(mark, "lead", field)


def test_lead_names_are_normalised_and_other_scripts_welcome(app, staff):
    http = app.test_client()
    body = {
        **LEAD,
        "first_name": "\uff21\uff53\uff48\uff41",
        "last_name": "Verma \u0935\u0930\u094d\u092e\u093e",
    }
    answer = http.post("/api/v1/lead/", json=body, headers=bearer(http, staff["agent"]))
    assert answer.status_code == 201, answer.json
    lead = db.session.get(Lead, answer.json["id"])
    assert (lead.first_name, lead.last_name) == ("Asha", "Verma \u0935\u0930\u094d\u092e\u093e")


@pytest.mark.parametrize(
    "name",
    [
        "\u5c71\u7530 \u306f\u306a\u3053",  # 山田 はなこ (kanji and kana)
        "\u30e4\u30de\u30c0\u30fc",  # ヤマダー (the long-vowel mark is kana too)
        "\u0d28\u0d4d\u200d",  # Malayalam with a zero-width joiner, as the script writes it
        "\u0645\u200c\u062d\u0645\u062f",  # Persian with a zero-width non-joiner
        "Zo\u00eb O'Brien-Nguy\u1ec5n",
        "\u0391\u03bb\u03ad\u03be\u03b7\u03c2 Papadopoulos",  # Αλέξης (a Greek word)
    ],
)
def test_names_in_any_single_script_are_accepted(app, name):
    assert clean_name(name, "name", 100) == name


@pytest.mark.parametrize(
    "value, words",
    [
        (f"{CYRILLIC_A}cme Traders", "different scripts"),
        ("Acme\u2060Traders", "word joiner"),
        ("Acme\x00", "NUL"),
        ("x" * 10_000, "name"),
        ('Acme"><svg onload=alert(1)>', "not markup"),
    ],
)
def test_client_api_refuses_hostile_names(app, staff, value, words):
    http = app.test_client()
    mark = audit_mark()
    answer = http.post(
        "/api/v1/client/", json={"name": value}, headers=bearer(http, staff["agent"])
    )
    assert answer.status_code == 422, answer.json
    assert "name" in answer.json["message"]
    assert words in " ".join(answer.json["message"]["name"]) or words == "name"
    assert count(Client) == 0
    assert_refusal_audited(mark, "client", "name")


@pytest.mark.parametrize(
    "value, words",
    [
        (f"Asha Verm{CYRILLIC_A}", "different scripts"),
        ("Asha\u200bVerma", "zero-width space"),
        ("x" * 10_000, "cannot be longer than 200 characters"),
    ],
)
def test_client_screen_shows_the_error_and_writes_nothing(client, staff, value, words):
    login(client, staff["agent"].user.username)
    mark = audit_mark()
    page = client.post(
        "/clientview/add",
        data={"name": value, "client_type": "individual", "status": "active"},
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert words in page.get_data(as_text=True)
    assert count(Client) == 0
    if words != "cannot be longer than 200 characters":  # the form's own length check
        assert_refusal_audited(mark, "client", "name")


@pytest.mark.parametrize(
    "reason, words", [("ok\x00", "NUL"), ("x" * 10_000, "too long"), ("\u200b", "zero-width")]
)
def test_kyc_rejection_reason_is_checked_before_anything_moves(app, staff, reason, words):
    customer = make_client(staff["agent"])
    case = open_case(customer.id)
    db.session.commit()
    http = app.test_client()
    mark = audit_mark()
    answer = http.post(
        f"/api/v1/kyccase/{case.id}/reject",
        json={"reason": reason},
        headers=bearer(http, staff["compliance"]),
    )
    assert answer.status_code == 422, answer.json
    assert words in answer.json["message"]["reason"][0]
    db.session.expire_all()
    assert db.session.get(KycCase, case.id).status == "pending"
    assert_refusal_audited(mark, "kyc_case", "reason")


def test_kyc_case_for_an_absurd_client_id_is_refused(app, staff):
    http = app.test_client()
    mark = audit_mark()
    answer = http.post(
        "/api/v1/kyccase/",
        json={"client_id": 99999999999999999999},
        headers=bearer(http, staff["agent"]),
    )
    assert answer.status_code == 422, answer.json
    assert "client_id" in answer.json["message"]
    assert count(KycCase) == 0
    assert_refusal_audited(mark, "kyc_case", "client_id")


# ---- amounts: negative, not a number, infinite, beyond any float ----------------------------


@pytest.mark.parametrize("literal", ['"-1"', "NaN", "-Infinity", "1e309", '"1e309"'])
def test_loan_repayment_refuses_absurd_amounts(app, staff, literal):
    loan = make_settled_loan(staff["loanofficer"], date(2026, 1, 15))
    db.session.commit()
    http = app.test_client()
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        f"/api/v1/loanapplication/{loan.id}/repayment",
        with_value({}, "amount", literal),
        bearer(http, staff["loanofficer"]),
    )
    assert answer.status_code == 422, answer.json
    assert "amount" in answer.json["message"]
    assert count(LoanRepayment) == 0
    assert_refusal_audited(mark, "loan_application", "amount")


@pytest.mark.parametrize("literal", ['"2026-02-30"', '"0000-00-00"', '"26/02/2026"', "20260215"])
def test_loan_repayment_refuses_impossible_dates(app, staff, literal):
    loan = make_settled_loan(staff["loanofficer"], date(2026, 1, 15))
    db.session.commit()
    http = app.test_client()
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        f"/api/v1/loanapplication/{loan.id}/repayment",
        with_value({"amount": "100.00"}, "received_on", literal),
        bearer(http, staff["loanofficer"]),
    )
    assert answer.status_code == 422, answer.json
    assert "received_on" in answer.json["message"]
    assert count(LoanRepayment) == 0
    assert_refusal_audited(mark, "loan_application", "received_on")


@pytest.mark.parametrize("literal", ["-1", "NaN", "1e309"])
def test_loan_application_refuses_absurd_amounts(app, staff, literal):
    product = make_product()
    db.session.commit()
    http = app.test_client()
    body = {
        "product_id": product.id,
        "term_months": 120,
        "interest_rate": "5.5",
        "repayment_frequency": "monthly",
        "application_type": "purchase",
        "parties": [
            {"role": "borrower", "party_type": "individual", "first_name": "Bea", "last_name": "B"}
        ],
    }
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        "/api/v1/loanapplication/",
        with_value(body, "amount", literal),
        bearer(http, staff["loanofficer"]),
    )
    assert answer.status_code == 422, answer.json
    assert "amount" in answer.json["message"]
    assert count(LoanApplication) == 0
    assert_refusal_audited(mark, "loan_application", "amount")


@pytest.mark.parametrize("literal", ["-1", "0", "NaN", "Infinity", "1e309", '"12 rupees"'])
def test_invoice_payment_refuses_absurd_amounts(app, staff, literal):
    invoice = issued_invoice(make_client(staff["agent"]))
    http = app.test_client()
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        f"/api/v1/invoice/{invoice.id}/payment",
        with_value({"method": "cash"}, "amount", literal),
        bearer(http, staff["manager"]),
    )
    assert answer.status_code == 422, answer.json
    assert "amount" in answer.json["message"]
    assert count(Payment) == 0
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).amount_paid == Decimal("0.00")
    assert_refusal_audited(mark, "invoice", "amount")


@pytest.mark.parametrize("due", ["2026-02-30", "0000-00-00", "2026-13-01", "yesterday"])
def test_invoice_refuses_impossible_due_dates(app, staff, due):
    customer = make_client(staff["agent"])
    db.session.commit()
    http = app.test_client()
    mark = audit_mark()
    answer = http.post(
        "/api/v1/invoice/",
        json={"client_id": customer.id, "due_date": due, "lines": invoice_lines()},
        headers=bearer(http, staff["manager"]),
    )
    assert answer.status_code == 422, answer.json
    assert "due_date" in answer.json["message"]
    assert count(Invoice) == 0
    assert_refusal_audited(mark, "invoice", "due_date")


@pytest.mark.parametrize("literal", ["-1", "NaN", "Infinity", "1e309", '"1e400"'])
def test_forex_quote_refuses_absurd_amounts(app, staff, literal):
    customer = forex_desk(staff["agent"])
    http = app.test_client()
    mark = audit_mark()
    body = {"client_id": customer.id, "sell_currency": "USD", "buy_currency": "EUR"}
    answer = raw_json(
        http,
        "POST",
        "/api/v1/fxexchange/quote",
        with_value(body, "sell_amount", literal),
        bearer(http, staff["agent"]),
    )
    assert answer.status_code == 422, answer.json
    assert "sell_amount" in answer.json["message"]
    assert count(FxExchange) == 0
    assert_refusal_audited(mark, "fx_exchange", "sell_amount")


def test_forex_quote_for_an_absurd_client_id_is_refused(app, staff):
    forex_desk(staff["agent"])
    http = app.test_client()
    body = {
        "client_id": 99999999999999999999,
        "sell_currency": "USD",
        "buy_currency": "EUR",
        "sell_amount": "10.00",
    }
    mark = audit_mark()
    answer = http.post("/api/v1/fxexchange/quote", json=body, headers=bearer(http, staff["agent"]))
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "client_id" in answer.json["message"]
    assert count(FxExchange) == 0
    assert_refusal_audited(mark, "fx_exchange", "client_id")


@pytest.mark.parametrize("literal", ["Infinity", "-5", "1e309"])
def test_wallet_deposit_refuses_absurd_amounts(app, staff, literal):
    customer = forex_desk(staff["agent"])
    wallet = db.session.scalar(select(Wallet).where(Wallet.client_id == customer.id))
    postings = count(WalletPosting)
    http = app.test_client()
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        f"/api/v1/wallet/{wallet.id}/deposit",
        with_value({}, "amount", literal),
        bearer(http, staff["manager"]),
    )
    assert answer.status_code == 422, answer.json
    assert "amount" in answer.json["message"]
    assert count(WalletPosting) == postings
    assert_refusal_audited(mark, "wallet", "amount")


@pytest.mark.parametrize(
    "field, literal",
    [
        ("quantity", "-1"),
        ("quantity", "1e309"),
        ("price", "NaN"),
        ("price", '"Infinity"'),
        ("fees", "-0.01"),
        ("trade_date", '"0000-00-00"'),
        ("trade_date", '"2026-02-30"'),
    ],
)
def test_trade_refuses_absurd_values(app, staff, field, literal):
    customer = make_client(staff["agent"])
    customer.risk_profile = "aggressive"
    instrument = make_instrument("ACME")
    db.session.commit()
    http = app.test_client()
    body = {
        "client_id": customer.id,
        "instrument_id": instrument.id,
        "side": "buy",
        "quantity": "10",
        "price": "10.00",
        "fees": "1.00",
        "trade_date": "2026-11-02",
    }
    mark = audit_mark()
    answer = raw_json(
        http,
        "POST",
        "/api/v1/trade/",
        with_value(body, field, literal),
        bearer(http, staff["manager"]),
    )
    assert answer.status_code == 422, answer.json
    assert field in answer.json["message"]
    assert count(Trade) == 0
    assert_refusal_audited(mark, "trade", field)
