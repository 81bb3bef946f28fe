"""Invoice and quotation PDFs (reportlab platypus): the company's header, the document's number
and dates, the client, a table of lines, the totals (and for an invoice what was paid and the
balance due), and page numbers."""

from __future__ import annotations

import io
from decimal import Decimal
from xml.sax.saxutils import escape

from flask import current_app
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.billing.models import Invoice, Quotation
from app.core.forms import display_money, display_units

STATUS_NAMES = {"partially_paid": "partially paid"}


def _money(value: Decimal | None) -> str:
    return display_money(value or Decimal("0"))


def _page_number(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
    canvas.restoreState()


def _build(title: str, facts: list[tuple[str, str]], document, totals: list[tuple[str, str]]):
    styles = getSampleStyleSheet()
    config = current_app.config
    currency = config.get("CRM_BASE_CURRENCY", "INR")
    company = config.get("CRM_COMPANY_NAME") or "FinCRM Financial Services"
    address = config.get("CRM_COMPANY_ADDRESS") or ""
    client = document.client
    story = [
        Paragraph(escape(company), styles["Title"]),
        *([Paragraph(escape(address).replace("\n", "<br/>"), styles["Normal"])] if address else []),
        Spacer(1, 6 * mm),
        Paragraph(escape(title), styles["Heading2"]),
    ]
    fact_rows = [[label, value] for label, value in facts]
    fact_rows.append(["Client", client.name if client else ""])
    if client is not None and client.address:
        fact_rows.append(["Address", client.address])
    story.append(Table(fact_rows, colWidths=[35 * mm, 120 * mm], hAlign="LEFT"))
    story.append(Spacer(1, 6 * mm))
    cell = styles["BodyText"]
    rows = [["Description", "Qty", "Unit price", "Tax %", "Tax", f"Total ({currency})"]]
    for line in document.lines:
        rows.append(
            [
                Paragraph(escape(line.description), cell),
                display_units(line.quantity),
                _money(line.unit_price),
                f"{line.tax_rate:.2f}",
                _money(line.tax),
                _money(line.total),
            ]
        )
    table = Table(
        rows,
        colWidths=[70 * mm, 18 * mm, 25 * mm, 15 * mm, 20 * mm, 28 * mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#2c3e50")),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    story.append(table)
    story.append(Spacer(1, 4 * mm))
    total_table = Table(
        [[label, f"{currency} {value}"] for label, value in totals],
        colWidths=[40 * mm, 40 * mm],
        hAlign="RIGHT",
    )
    total_table.setStyle(
        TableStyle(
            [
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
            ]
        )
    )
    story.append(total_table)
    if document.notes:
        story += [Spacer(1, 6 * mm), Paragraph(escape(document.notes), styles["Normal"])]
    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author=company,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    ).build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return out.getvalue()


def invoice_pdf(invoice: Invoice) -> bytes:
    status = STATUS_NAMES.get(invoice.status, invoice.status)
    facts = [
        ("Invoice number", invoice.number or "DRAFT (not issued)"),
        ("Issue date", str(invoice.issue_date or "")),
        ("Due date", str(invoice.due_date)),
        ("Status", status),
    ]
    totals = [
        ("Subtotal", _money(invoice.subtotal)),
        ("Tax", _money(invoice.tax_total)),
        ("Total", _money(invoice.total)),
        ("Paid", _money(invoice.amount_paid)),
        ("Balance due", _money(invoice.balance_due)),
    ]
    return _build(f"Invoice {invoice.number or '(draft)'}", facts, invoice, totals)


def quotation_pdf(quotation: Quotation) -> bytes:
    facts = [
        ("Quotation number", quotation.number),
        ("Date", str(quotation.issue_date)),
        ("Valid until", str(quotation.valid_until)),
        ("Status", quotation.status),
    ]
    totals = [
        ("Subtotal", _money(quotation.subtotal)),
        ("Tax", _money(quotation.tax_total)),
        ("Total", _money(quotation.total)),
    ]
    return _build(f"Quotation {quotation.number}", facts, quotation, totals)


def pdf_filename(document: Invoice | Quotation) -> str:
    if isinstance(document, Invoice):
        return f"{document.number or f'draft-invoice-{document.id}'}.pdf"
    return f"{document.number}.pdf"
