"""Billing API: products, quotations (created with their lines; send, accept, reject, convert),
invoices (created with their lines; issue, void, payment), contracts, and the PDFs. Same row
scoping as the screens: another agent's client's invoice answers 404."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.api import expose, protect, safe

from app.billing import services
from app.billing.models import (
    BillingProduct,
    Contract,
    Invoice,
    InvoiceLine,
    Payment,
    Quotation,
    QuotationLine,
)
from app.billing.pdf import invoice_pdf, pdf_filename, quotation_pdf
from app.billing.views import INVOICE_PERMISSIONS, pdf_response
from app.core.audit import record_event
from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.core.errors import NotFound
from app.extensions import db
from app.security.roles import API_METHOD_ACTIONS, DECIDE, REPAY

LINE_COLUMNS = ("description", "product_id", "quantity", "unit_price", "tax_rate")


def _lines(document) -> list[dict[str, Any]]:
    return [
        {
            "id": line.id,
            "description": line.description,
            "product_id": line.product_id,
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "tax_rate": str(line.tax_rate),
            "subtotal": str(line.subtotal),
            "tax": str(line.tax),
            "total": str(line.total),
        }
        for line in document.lines
    ]


def _invoice_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "client_id": invoice.client_id,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat(),
        "subtotal": str(invoice.subtotal),
        "tax_total": str(invoice.tax_total),
        "total": str(invoice.total),
        "amount_paid": str(invoice.amount_paid),
        "balance_due": str(invoice.balance_due),
        "lines": _lines(invoice),
    }


def _quotation_json(quotation: Quotation) -> dict[str, Any]:
    return {
        "id": quotation.id,
        "number": quotation.number,
        "status": quotation.status,
        "client_id": quotation.client_id,
        "valid_until": quotation.valid_until.isoformat(),
        "subtotal": str(quotation.subtotal),
        "tax_total": str(quotation.tax_total),
        "total": str(quotation.total),
        "invoice_id": quotation.invoice_id,
        "lines": _lines(quotation),
    }


class BillingProductApi(ServiceModelRestApi):
    resource_name = "billingproduct"
    datamodel = CrmSQLAInterface(BillingProduct)
    class_permission_name = "BillingProduct"
    prepare = staticmethod(services.prepare_product)
    allow_browser_login = True
    list_columns = show_columns = [
        "id",
        "sku",
        "name",
        "kind",
        "description",
        "unit_price",
        "tax_rate",
        "active",
    ]
    add_columns = edit_columns = list_columns[1:]


QUOTATION_COLUMNS = [
    "id",
    "number",
    "client_id",
    "issue_date",
    "valid_until",
    "status",
    "notes",
    "subtotal",
    "tax_total",
    "total",
    "invoice_id",
    "created_at",
]


class QuotationApi(ServiceModelRestApi):
    resource_name = "quotation"
    datamodel = CrmSQLAInterface(Quotation)
    class_permission_name = "Quotation"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "send": "write",
        "accept": "write",
        "reject": "write",
        "convert": "write",
        "pdf": "read",
    }
    allow_browser_login = True
    include_route_methods = {
        "get",
        "get_list",
        "info",
        "post",
        "send",
        "accept",
        "reject",
        "convert",
        "pdf",
    }
    list_columns = show_columns = QUOTATION_COLUMNS
    search_columns = ["number", "status", "client_id", "valid_until"]
    order_columns = ["id", "number", "valid_until", "total"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def post(self):
        """Create a draft quotation with its lines, all or nothing.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    client_id: {type: integer}
                    valid_until: {type: string, format: date}
                    notes: {type: string}
                    lines: {type: array, items: {type: object}}
          responses:
            201: {description: the quotation with its number, lines and totals}
            422: {description: the bad field, e.g. lines-1-quantity}
        """
        return self.run_workflow(
            lambda: services.create_quotation(json_body()), _quotation_json, 201
        )

    def _move(self, pk: int, to: str):
        return self.run_workflow(lambda: services.move_quotation(pk, to), _quotation_json)

    @expose("/<int:pk>/send", methods=["POST"])
    @protect()
    @safe
    def send(self, pk: int):
        """Mark a draft quotation as sent.
        ---
        post:
          responses:
            200: {description: the quotation}
            404: {$ref: '#/components/responses/404'}
            409: {description: a move the state machine does not allow}
        """
        return self._move(pk, "sent")

    @expose("/<int:pk>/accept", methods=["POST"])
    @protect()
    @safe
    def accept(self, pk: int):
        """Accept a sent quotation (refused after its validity date).
        ---
        post:
          responses:
            200: {description: the quotation}
            404: {$ref: '#/components/responses/404'}
            409: {description: not sent, or expired}
        """
        return self._move(pk, "accepted")

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    def reject(self, pk: int):
        """Reject a sent quotation.
        ---
        post:
          responses:
            200: {description: the quotation}
            404: {$ref: '#/components/responses/404'}
            409: {description: a move the state machine does not allow}
        """
        return self._move(pk, "rejected")

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    def convert(self, pk: int):
        """Turn an accepted quotation into a draft invoice (``{"due_date": "..."}``), once.
        ---
        post:
          responses:
            201: {description: the draft invoice}
            404: {$ref: '#/components/responses/404'}
            409: {description: not accepted, or already converted}
        """
        return self.run_workflow(
            lambda: services.convert_quotation(pk, json_body().get("due_date")), _invoice_json, 201
        )

    @expose("/<int:pk>/pdf", methods=["GET"])
    @protect()
    @safe
    def pdf(self, pk: int):
        """The quotation as a PDF.
        ---
        get:
          responses:
            200: {description: application/pdf}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            quotation = services.get_quotation(pk)
        except NotFound as exc:
            return self.response(404, **exc.as_json())
        data = quotation_pdf(quotation)
        record_event("download", quotation, f"{quotation.number} PDF (API)")
        db.session.commit()
        return pdf_response(data, pdf_filename(quotation))


INVOICE_COLUMNS = [
    "id",
    "number",
    "client_id",
    "issue_date",
    "due_date",
    "status",
    "notes",
    "subtotal",
    "tax_total",
    "total",
    "amount_paid",
    "quotation_id",
    "created_at",
]


class InvoiceApi(ServiceModelRestApi):
    resource_name = "invoice"
    datamodel = CrmSQLAInterface(Invoice)
    class_permission_name = "Invoice"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "issue": DECIDE,
        "void": DECIDE,
        "payment": REPAY,
        "payment_link": REPAY,
        "pdf": "read",
    }
    base_permissions = INVOICE_PERMISSIONS
    allow_browser_login = True
    include_route_methods = {
        "get",
        "get_list",
        "info",
        "post",
        "issue",
        "void",
        "payment",
        "payment_link",
        "pdf",
    }
    list_columns = show_columns = INVOICE_COLUMNS
    search_columns = ["number", "status", "client_id", "due_date"]
    order_columns = ["id", "number", "due_date", "total"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def post(self):
        """Create a draft invoice with its lines, all or nothing (numbered when issued).
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    client_id: {type: integer}
                    due_date: {type: string, format: date}
                    notes: {type: string}
                    lines: {type: array, items: {type: object}}
          responses:
            201: {description: the draft invoice with its lines and totals}
            422: {description: the bad field, e.g. lines-0-tax_rate}
        """
        return self.run_workflow(lambda: services.create_invoice(json_body()), _invoice_json, 201)

    @expose("/<int:pk>/issue", methods=["POST"])
    @protect()
    @safe
    def issue(self, pk: int):
        """Issue a draft: it gets the next number and is posted to the ledger.
        ---
        post:
          responses:
            200: {description: the issued invoice}
            404: {$ref: '#/components/responses/404'}
            409: {description: not a draft}
        """
        return self.run_workflow(
            lambda: services.issue_invoice(pk, json_body().get("issue_date")), _invoice_json
        )

    @expose("/<int:pk>/void", methods=["POST"])
    @protect()
    @safe
    def void(self, pk: int):
        """Void an invoice nothing was paid on (``{"reason": "..."}``).
        ---
        post:
          responses:
            200: {description: the void invoice}
            404: {$ref: '#/components/responses/404'}
            409: {description: something was paid}
        """
        return self.run_workflow(
            lambda: services.void_invoice(pk, json_body().get("reason")), _invoice_json
        )

    @expose("/<int:pk>/payment", methods=["POST"])
    @protect()
    @safe
    def payment(self, pk: int):
        """Record money received (``{"amount": "200.00", "method": "upi"}``).
        ---
        post:
          responses:
            201: {description: the payment and the invoice's new balance}
            404: {$ref: '#/components/responses/404'}
            422: {description: a bad amount, or more than the balance due}
        """
        return self.run_workflow(
            lambda: services.record_payment(pk, json_body()),
            lambda p: {
                "id": p.id,
                "amount": str(p.amount),
                "journal_entry_id": p.journal_entry_id,
                "invoice": _invoice_json(p.invoice),
            },
            201,
        )

    @expose("/<int:pk>/payment-link", methods=["POST"])
    @protect()
    @safe
    def payment_link(self, pk: int):
        """A payment link for an issued invoice's balance due (docs/payments.md).
        ---
        post:
          responses:
            201: {description: the link (url, amount, currency, status)}
            404: {$ref: '#/components/responses/404'}
            409: {description: nothing is due}
            503: {description: the payment provider did not answer}
        """
        from app.payments import services as payments

        return self.run_workflow(lambda: payments.link_for_invoice(pk), payments.intent_json, 201)

    @expose("/<int:pk>/pdf", methods=["GET"])
    @protect()
    @safe
    def pdf(self, pk: int):
        """The invoice as a PDF.
        ---
        get:
          responses:
            200: {description: application/pdf}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            invoice = services.get_invoice(pk)
        except NotFound as exc:
            return self.response(404, **exc.as_json())
        data = invoice_pdf(invoice)
        record_event("download", invoice, f"{invoice!r} PDF (API)")
        db.session.commit()
        return pdf_response(data, pdf_filename(invoice))


class ContractApi(ServiceModelRestApi):
    resource_name = "contract"
    datamodel = CrmSQLAInterface(Contract)
    class_permission_name = "Contract"
    prepare = staticmethod(services.prepare_contract)
    allow_browser_login = True
    list_columns = show_columns = [
        "id",
        "client_id",
        "title",
        "terms",
        "value",
        "start_date",
        "end_date",
        "renewal_date",
        "status",
        "document_id",
        "created_at",
    ]
    add_columns = edit_columns = [
        "client_id",
        "title",
        "terms",
        "value",
        "start_date",
        "end_date",
        "renewal_date",
    ]


class QuotationLineApi(ReadOnlyRestApi):
    """A quotation's lines: written with the quotation (and on its screen while a draft)."""

    resource_name = "quotationline"
    datamodel = CrmSQLAInterface(QuotationLine)
    class_permission_name = "Quotation"
    base_permissions = ["can_read", "can_write"]
    list_columns = show_columns = readable_columns(QuotationLine)
    search_columns = ["quotation_id", "product_id"]


class InvoiceLineApi(ReadOnlyRestApi):
    """An invoice's lines: written with the invoice; never changed once it is issued."""

    resource_name = "invoiceline"
    datamodel = CrmSQLAInterface(InvoiceLine)
    class_permission_name = "Invoice"
    base_permissions = INVOICE_PERMISSIONS
    list_columns = show_columns = readable_columns(InvoiceLine)
    search_columns = ["invoice_id", "product_id"]


class PaymentApi(ReadOnlyRestApi):
    """Invoice payments: recorded by ``POST /api/v1/invoice/<id>/payment`` (posted to the
    ledger), never edited."""

    resource_name = "payment"
    datamodel = CrmSQLAInterface(Payment)
    class_permission_name = "Invoice"
    base_permissions = INVOICE_PERMISSIONS
    list_columns = show_columns = readable_columns(Payment)
    search_columns = ["invoice_id", "method", "paid_on"]
    base_order = ("id", "desc")
