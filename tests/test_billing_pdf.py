"""The invoice and quotation PDFs: their text holds the lines and totals, and pdftoppm turns
the invoice into a picture that is not blank."""

from __future__ import annotations

import io
import subprocess
from datetime import date

from pypdf import PdfReader

from app.billing import services
from app.billing.pdf import invoice_pdf, quotation_pdf
from app.extensions import db
from tests.billing_support import TODAY, issued_invoice, make_client, two_lines


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_invoice_pdf_shows_its_lines_totals_payment_and_balance(app):
    invoice = issued_invoice(make_client(name="Meera Iyer"))
    services.record_payment(invoice.id, {"amount": "200.00"}, today=TODAY)
    db.session.commit()
    data = invoice_pdf(invoice)
    assert data.startswith(b"%PDF")
    text = _text(data)
    for expected in (
        "INV-2026-000001",
        "Meera Iyer",
        "Advisory retainer",
        "Courier",
        "333.33",
        "1,179.99",
        "15.83",
        "1,015.07",  # subtotal
        "180.75",  # tax
        "1,195.82",  # total
        "200.00",  # paid
        "995.82",  # balance due
        "Balance due",
        "2026-04-01",
        "Page 1",
    ):
        assert expected in text, expected


def test_quotation_pdf_shows_its_lines_and_total(app):
    client = make_client()
    quotation = services.create_quotation(
        {"client_id": client.id, "valid_until": date(2026, 3, 31), "lines": two_lines()},
        today=TODAY,
    )
    db.session.commit()
    text = _text(quotation_pdf(quotation))
    for expected in ("Q-2026-00001", "Valid until", "2026-03-31", "Advisory retainer", "1,195.82"):
        assert expected in text, expected


def test_a_long_invoice_runs_to_several_numbered_pages(app):
    lines = [
        {"description": f"Item {n}", "quantity": "1", "unit_price": "10.00", "tax_rate": "0"}
        for n in range(80)
    ]
    invoice = issued_invoice(make_client(), lines)
    reader = PdfReader(io.BytesIO(invoice_pdf(invoice)))
    assert len(reader.pages) >= 2
    assert "Page 2" in reader.pages[1].extract_text()
    assert "Item 79" in _text(invoice_pdf(invoice))
    assert "800.00" in _text(invoice_pdf(invoice))


def test_pdftoppm_renders_the_invoice_as_a_picture_that_is_not_blank(app, tmp_path):
    invoice = issued_invoice(make_client())
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(invoice_pdf(invoice))
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True, timeout=60
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    png = pages[0].read_bytes()
    assert png.startswith(b"\x89PNG")
    # An A4 page at 50 dpi that is all white compresses to well under 2 KB; text and a table
    # make it several times larger.
    blank = tmp_path / "blank.pdf"
    from reportlab.pdfgen import canvas

    empty = canvas.Canvas(str(blank))
    empty.showPage()
    empty.save()
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", str(blank), str(tmp_path / "blank")], check=True
    )
    blank_png = next(tmp_path.glob("blank*.png")).read_bytes()
    assert len(png) > 3 * len(blank_png)


def test_free_text_with_markup_is_printed_as_text_in_the_pdf(app):
    """Line descriptions and notes are free text: reportlab's paragraph markup in them is
    printed literally, never obeyed (and never breaks the PDF)."""
    lines = two_lines()
    lines[0]["description"] = 'Retainer <b>bold</b> & <img src="x"/> <font size=40>big</font>'
    invoice = services.create_invoice(
        {
            "client_id": make_client(name="Meera Iyer").id,
            "due_date": date(2026, 4, 1),
            "lines": lines,
            "notes": "Pay <i>soon</i> & thanks",
        }
    )
    db.session.commit()
    text = _text(invoice_pdf(invoice))
    assert "<b>bold</b>" in text and '<img src="x"/>' in text and "<font size=40>" in text
    assert "Pay <i>soon</i> & thanks" in text
