"""The billing screens and API as people use them: row scoping (an agent gets 404 for another
agent's client's invoice), creation with lines, refusals as 4xx with nothing written, the PDF
download, and who may issue and record payments."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from app.audit.models import AuditLog
from app.billing.models import Contract, Invoice, Payment
from app.extensions import db
from tests.billing_support import issued_invoice, make_client, two_lines
from tests.support import api_token, count, login, make_branch, make_staff
from tests.test_statement_budget import counting


def _bearer(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


def test_an_agent_gets_404_for_another_agents_clients_invoice(app, client):
    branch = make_branch(tz="UTC")
    mine, theirs = make_staff("Agent", branch), make_staff("Agent", branch)
    own = issued_invoice(make_client(mine, "Own Client"))
    other = issued_invoice(make_client(theirs, "Other Client"))
    headers = _bearer(client, mine)
    assert client.get(f"/api/v1/invoice/{own.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/invoice/{other.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/invoice/{other.id}/pdf", headers=headers).status_code == 404
    listed = client.get("/api/v1/invoice/", headers=headers).json["result"]
    assert [row["number"] for row in listed] == [own.number]
    login(client, mine.user.username)
    assert client.get(f"/invoiceview/show/{own.id}").status_code == 200
    assert client.get(f"/invoiceview/show/{other.id}").status_code == 404
    assert client.get(f"/invoiceview/pdf/{other.id}").status_code == 404
    page = client.get("/invoiceview/list/").get_data(as_text=True)
    assert own.number in page and other.number not in page


def test_manager_flow_through_the_api(app, client):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    customer = make_client(make_staff("Agent", manager.branch))
    db.session.commit()
    headers = _bearer(client, manager)
    created = client.post(
        "/api/v1/quotation/",
        json={"client_id": customer.id, "valid_until": "2099-12-31", "lines": two_lines()},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    assert created.json["total"] == "1195.82"
    pk = created.json["id"]
    assert client.post(f"/api/v1/quotation/{pk}/accept", headers=headers).status_code == 409
    assert client.post(f"/api/v1/quotation/{pk}/send", headers=headers).status_code == 200
    assert client.post(f"/api/v1/quotation/{pk}/accept", headers=headers).status_code == 200
    invoice = client.post(f"/api/v1/quotation/{pk}/convert", json={}, headers=headers)
    assert invoice.status_code == 201 and invoice.json["status"] == "draft"
    again = client.post(f"/api/v1/quotation/{pk}/convert", json={}, headers=headers)
    assert again.status_code == 409 and "already converted" in str(again.json)
    inv = invoice.json["id"]
    issued = client.post(f"/api/v1/invoice/{inv}/issue", json={}, headers=headers)
    assert issued.status_code == 200 and issued.json["number"].startswith("INV-")
    over = client.post(
        f"/api/v1/invoice/{inv}/payment", json={"amount": "1195.83"}, headers=headers
    )
    assert over.status_code == 422 and "1195.82" in str(over.json)
    assert count(Payment) == 0
    paid = client.post(
        f"/api/v1/invoice/{inv}/payment",
        json={"amount": "195.82", "method": "upi"},
        headers=headers,
    )
    assert paid.status_code == 201
    assert paid.json["invoice"]["status"] == "partially_paid"
    assert paid.json["invoice"]["balance_due"] == "1000.00"
    pdf = client.get(f"/api/v1/invoice/{inv}/pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/api/v1/quotation/{pk}/pdf", headers=headers).data.startswith(b"%PDF")


def test_bad_input_through_the_api_is_422_and_writes_nothing(app, client):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    customer = make_client(make_staff("Agent", manager.branch))
    db.session.commit()
    headers = _bearer(client, manager)
    for line, field in (
        ({"description": "x", "quantity": -1, "unit_price": "1"}, "lines-0-quantity"),
        (
            {"description": "x", "quantity": 1, "unit_price": "1", "tax_rate": 101},
            "lines-0-tax_rate",
        ),
        ({"description": "x", "quantity": "NaN", "unit_price": "1"}, "lines-0-quantity"),
        ({"description": "x", "quantity": 1, "unit_price": 1e309}, "lines-0-unit_price"),
        ({"description": "x", "quantity": 1, "unit_price": "9.999"}, "lines-0-unit_price"),
        ({"product_id": 987654, "quantity": 1}, "lines-0-product_id"),
    ):
        answer = client.post(
            "/api/v1/invoice/", json={"client_id": customer.id, "lines": [line]}, headers=headers
        )
        assert answer.status_code == 422, (line, answer.json)
        assert field in answer.json["message"], answer.json
    answer = client.post(
        "/api/v1/invoice/",
        json={"client_id": customer.id, "due_date": "0000-00-00", "lines": two_lines()},
        headers=headers,
    )
    assert answer.status_code == 422 and "due_date" in answer.json["message"]
    assert count(Invoice) == 0


def test_an_agent_reads_invoices_but_cannot_issue_or_record_payments(app, client):
    agent = make_staff("Agent", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(agent))
    headers = _bearer(client, agent)
    assert (
        client.post(
            f"/api/v1/invoice/{invoice.id}/payment", json={"amount": "1"}, headers=headers
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/invoice/{invoice.id}/void", json={"reason": "x"}, headers=headers
        ).status_code
        == 403
    )
    assert count(Payment) == 0


def test_screens_record_a_payment_and_refuse_an_overpayment(app, client):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(make_staff("Agent", manager.branch)))
    login(client, manager.user.username)
    page = client.post(
        f"/invoiceview/payment/{invoice.id}",
        data={"amount": "2000", "method": "cash"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "balance due of 1195.82" in page
    assert count(Payment) == 0
    page = client.post(
        f"/invoiceview/payment/{invoice.id}",
        data={"amount": "195.82", "method": "cash"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "balance due 1,000.00" in page
    assert 'id="invoice-status">partially_paid' in page
    pdf = client.get(f"/invoiceview/pdf/{invoice.id}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    downloads = db.session.scalars(
        select(AuditLog.detail).where(
            AuditLog.action == "download",
            AuditLog.record_type == "invoice",
            AuditLog.record_id == str(invoice.id),
            AuditLog.actor_name == manager.user.username,
        )
    ).all()
    assert downloads == [f"{invoice.number} PDF"]


def test_a_contract_is_activated_once_its_signed_file_is_uploaded(app, client):
    import io

    manager = make_staff("Manager", make_branch(tz="UTC"))
    customer = make_client(make_staff("Agent", manager.branch))
    contract = Contract(
        client_id=customer.id, title="Advisory", value=1000, start_date=date(2026, 1, 1)
    )
    db.session.add(contract)
    db.session.commit()
    login(client, manager.user.username)
    page = client.post(
        f"/contractview/move/{contract.id}", data={"to": "active"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "upload the signed file" in page
    bad = client.post(
        f"/contractview/upload/{contract.id}",
        data={"file": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "signed.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Not done" in bad
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    client.post(
        f"/contractview/upload/{contract.id}",
        data={"file": (io.BytesIO(pdf), "signed.pdf")},
        content_type="multipart/form-data",
    )
    page = client.post(
        f"/contractview/move/{contract.id}", data={"to": "active"}, follow_redirects=True
    ).get_data(as_text=True)
    assert 'id="contract-status">active' in page
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).document.doc_type == "contract"


def test_contracts_through_the_api_and_the_add_screen(app, client):
    branch = make_branch(tz="UTC")
    agent, other = make_staff("Agent", branch), make_staff("Agent", branch)
    own, foreign = make_client(agent, "Own Client"), make_client(other, "Other Client")
    db.session.commit()
    headers = _bearer(client, agent)
    body = {
        "client_id": own.id,
        "title": "Annual advisory",
        "value": "60000.00",
        "start_date": "2026-01-01",
        "renewal_date": "2026-12-01",
    }
    made = client.post("/api/v1/contract/", json=body, headers=headers)
    assert made.status_code == 201, made.json
    bad = client.post(
        "/api/v1/contract/", json={**body, "renewal_date": "2025-12-01"}, headers=headers
    )
    assert bad.status_code == 422 and "renewal_date" in str(bad.json)
    theirs = client.post(
        "/api/v1/contract/", json={**body, "client_id": foreign.id}, headers=headers
    )
    assert theirs.status_code in (403, 422)
    assert count(Contract) == 1
    login(client, agent.user.username)
    page = client.post(
        "/contractview/add",
        data={
            "client": str(own.id),
            "title": "Second contract",
            "value": "100",
            "start_date": "2026-02-01",
        },
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert count(Contract) == 2


def test_draft_lines_change_on_the_screen_issued_ones_do_not(app, client):
    from app.billing.models import InvoiceLine
    from tests.billing_support import make_invoice

    manager = make_staff("Manager", make_branch(tz="UTC"))
    customer = make_client(make_staff("Agent", manager.branch))
    invoice = make_invoice(customer, due=date(2099, 1, 1))
    db.session.commit()
    login(client, manager.user.username)
    page = client.post(
        f"/invoiceview/line/{invoice.id}",
        data={"description": "Extra hour", "quantity": "1", "unit_price": "100", "tax_rate": "18"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'id="doc-total"><strong>1,313.82' in page
    first = db.session.scalars(
        db.select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice.id)
    ).first()
    client.post(f"/invoiceview/line/{invoice.id}/remove/{first}")
    client.post(f"/invoiceview/issue/{invoice.id}")
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert (
        invoice.status == "issued"
        and invoice.total == invoice.lines[0].total + invoice.lines[1].total
    )
    page = client.post(
        f"/invoiceview/line/{invoice.id}",
        data={"description": "Late addition", "quantity": "1", "unit_price": "5"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "cannot change" in page
    assert len(db.session.get(Invoice, invoice.id).lines) == 2
    page = client.post(
        f"/invoiceview/void/{invoice.id}", data={"reason": "wrong client"}, follow_redirects=True
    ).get_data(as_text=True)
    assert 'id="invoice-status">void' in page


def test_an_invoice_page_lists_its_lines_payments_and_ledger_at_the_same_cost_however_many(
    app, client
):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    invoice = issued_invoice(make_client(make_staff("Agent", manager.branch)))
    login(client, manager.user.username)
    show = f"/invoiceview/show/{invoice.id}"
    costs = []
    for amount in ("95.82", "100.00", "200.00"):
        client.post(f"/invoiceview/payment/{invoice.id}", data={"amount": amount, "method": "cash"})
        with counting() as statements:
            page = client.get(show).get_data(as_text=True)
        costs.append(len(statements))
    assert costs[0] == costs[-1] <= 8  # three payments (and their entries) cost what one does
    lines = page[page.index('id="billing-lines"') : page.index('id="invoice-payments"')]
    assert "Advisory retainer" in lines and "Courier" in lines
    assert 'id="add-line-form"' not in page  # an issued invoice's lines no longer change
    payments = page[page.index('id="invoice-payments"') : page.index('id="invoice-ledger"')]
    assert re.findall(r'class="text-right">([\d,.]+)</td>', payments) == [
        "95.82",
        "100.00",
        "200.00",
    ]
    assert payments.count(f"<td>{manager.user.username}</td>") == 3
    ledger = page[page.index('id="invoice-ledger"') :]
    memos = re.findall(r"<td>((?:Invoice|Payment on) INV-[\d-]+)</td>", ledger)
    assert memos == [f"Invoice {invoice.number}"] * 3 + [f"Payment on {invoice.number}"] * 6
