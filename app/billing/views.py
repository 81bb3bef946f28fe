"""Billing screens: products and services, quotations, invoices (with their payments) and
contracts. Every write goes through ``app.billing.services``; refusals are flashed and audited
and nothing is half-written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from sqlalchemy import select

from app.billing import services
from app.billing.models import (
    CONTRACT_STATUSES,
    PAYMENT_METHODS,
    PRODUCT_KINDS,
    BillingProduct,
    Contract,
    Invoice,
    Payment,
    Quotation,
)
from app.billing.pdf import invoice_pdf, pdf_filename, quotation_pdf
from app.clients.models import Client
from app.core.audit import record_event, record_rejection
from app.core.crud import CrmSQLAInterface, ServiceModelView, run_action
from app.core.errors import DomainError, NotFound
from app.core.forms import (
    choice_field,
    display_choice,
    display_money,
    display_timestamp,
    display_units,
)
from app.core.once import once_per_form
from app.documents.services import open_document
from app.documents.views import file_response
from app.extensions import db
from app.ledger.services import entries_for
from app.security.roles import DECIDE, REPAY, VIEW_METHOD_ACTIONS

INVOICE_PERMISSIONS = ["can_read", "can_write", "can_decide", "can_repay"]
"""Shared by every screen of the Invoice resource (FAB needs them identical)."""
BLANK_LINES = 5
"""Line rows on a new quotation or invoice form (more can be added on a draft's page)."""


def pdf_response(data: bytes, filename: str) -> Response:
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def lines_from_form(form) -> list[dict[str, Any]]:
    """The non-empty line rows of a new quotation or invoice form."""
    lines = []
    for i in range(BLANK_LINES):
        row = {
            key: form.get(f"lines-{i}-{key}", "").strip()
            for key in ("product_id", "description", "quantity", "unit_price", "tax_rate")
        }
        if any(row.values()):
            lines.append(row)
    return lines


class _BillingView(ServiceModelView):
    """A billing screen with one helper to run an action in its own transaction."""

    record_type = ""

    def _act(self, pk: int, action: Callable[[], Any], done: Callable[[Any], str], go=None):
        result, refusal = run_action(action, self.record_type)
        if refusal:
            flash(f"Not done: {refusal}", "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        flash(done(result), "success")
        return redirect(go(result) if go else url_for(f"{self.endpoint}.show", pk=pk))

    def _new(self, title: str, create: Callable[[dict], Any], date_field: tuple[str, str]):
        clients = db.session.scalars(select(Client).order_by(Client.name).limit(500)).all()
        products = db.session.scalars(
            select(BillingProduct)
            .where(BillingProduct.active.is_(True))
            .order_by(BillingProduct.name)
        ).all()
        form = request.form if request.method == "POST" else {}
        error = None
        if request.method == "POST":
            data = {
                "client_id": form.get("client_id"),
                date_field[0]: form.get(date_field[0]),
                "notes": form.get("notes"),
                "lines": lines_from_form(form),
            }
            try:
                record = create(data)
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                record_rejection(self.record_type, str(exc))
                error = str(exc)
                flash(f"Not saved: {exc}", "danger")
            else:
                flash(f"{record!r} saved.", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=record.id))
        return self.render_template(
            "crm/billing_new.html",
            title=title,
            form=form,
            clients=clients,
            products=products,
            rows=range(BLANK_LINES),
            date_field=date_field,
            error=error,
            action=url_for(f"{self.endpoint}.add"),
        )


# ---- products and services --------------------------------------------------------------------


class BillingProductView(ServiceModelView):
    datamodel = CrmSQLAInterface(BillingProduct)
    class_permission_name = "BillingProduct"
    prepare = staticmethod(services.prepare_product)
    list_title = "Products and services"
    list_columns = ["sku", "name", "kind", "unit_price", "tax_rate", "active"]
    show_columns = ["sku", "name", "kind", "description", "unit_price", "tax_rate", "active"]
    add_columns = edit_columns = show_columns
    search_columns = ["sku", "name", "kind", "active"]
    order_columns = ["sku", "name", "unit_price"]
    label_columns = {"sku": "SKU", "tax_rate": "Tax rate (%)"}
    add_form_extra_fields = {"kind": choice_field("Kind", PRODUCT_KINDS)}
    edit_form_extra_fields = add_form_extra_fields
    formatters_columns = {"unit_price": display_money, "kind": display_choice}


# ---- quotations -------------------------------------------------------------------------------


def _active_products() -> list[BillingProduct]:
    """The products a draft's new line can be chosen from."""
    return list(
        db.session.scalars(
            select(BillingProduct).where(BillingProduct.active.is_(True)).order_by("name")
        )
    )


class _LinedDocumentView(_BillingView):
    """A quotation or invoice screen: its draft's lines are added and removed, and its PDF is
    downloaded (audited), through the desk's services named by the subclass."""

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """A document is changed line by line on its page, not through a generated form."""
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    get_document: Callable[..., Any]
    add_document_line: Callable[[Any, Any], Any]
    remove_document_line: Callable[[Any, int], None]
    render_pdf: Callable[[Any], bytes]

    @expose("/line/<int:pk>", methods=["POST"])
    @has_access
    def add_line(self, pk: int):
        return self._act(
            pk,
            lambda: self.add_document_line(self.get_document(pk, lock=True), request.form),
            lambda line: f"Line “{line.description}” added.",
        )

    @expose("/line/<int:pk>/remove/<int:line_id>", methods=["POST"])
    @has_access
    def remove_line(self, pk: int, line_id: int):
        return self._act(
            pk,
            lambda: self.remove_document_line(self.get_document(pk, lock=True), line_id),
            lambda _: "Line removed.",
        )

    @expose("/pdf/<int:pk>")
    @has_access
    def pdf(self, pk: int):
        try:
            document = self.get_document(pk)
        except NotFound:
            abort(404)
        data = self.render_pdf(document)
        record_event("download", document, f"{document!r} PDF")
        db.session.commit()
        return pdf_response(data, pdf_filename(document))


class QuotationView(_LinedDocumentView):
    datamodel = CrmSQLAInterface(Quotation)
    get_document = staticmethod(services.get_quotation)
    add_document_line = staticmethod(services.add_quotation_line)
    remove_document_line = staticmethod(services.remove_quotation_line)
    render_pdf = staticmethod(quotation_pdf)
    class_permission_name = "Quotation"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "move": "write",
        "convert": "write",
        "add_line": "write",
        "remove_line": "write",
        "pdf": "read",
    }
    base_permissions = ["can_read", "can_write"]
    record_type = "quotation"
    show_template = "crm/quotation_show.html"
    list_title = "Quotations"
    list_columns = ["number", "client", "issue_date", "valid_until", "status", "total", "invoice"]
    show_columns = [
        "number",
        "client",
        "status",
        "issue_date",
        "valid_until",
        "notes",
        "subtotal",
        "tax_total",
        "total",
        "invoice",
        "created_by",
        "created_at",
    ]
    search_columns = ["number", "client", "status", "valid_until"]
    order_columns = ["number", "issue_date", "valid_until", "total"]
    base_order = ("id", "desc")
    label_columns = {"tax_total": "Tax", "invoice": "Invoice", "created_at": "Created (UTC)"}
    formatters_columns = {
        "status": display_choice,
        "subtotal": display_money,
        "tax_total": display_money,
        "total": display_money,
        "created_at": display_timestamp,
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return self._new("New quotation", services.create_quotation, ("valid_until", "Valid until"))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            quotation = services.get_quotation(int(pk))
        except (NotFound, ValueError):
            abort(404)
        products = _active_products()
        self.extra_args = {
            **self.extra_args,
            "quotation": quotation,
            "products": products,
            "next_moves": [s for s in services.QUOTATION_MOVES[quotation.status] if s != "expired"],
            "money": display_money,
            "quantity": display_units,
        }
        return super().show(pk)

    @expose("/move/<int:pk>", methods=["POST"])
    @has_access
    def move(self, pk: int):
        return self._act(
            pk,
            lambda: services.move_quotation(pk, request.form.get("to", "")),
            lambda q: f"{q.number} is now {q.status}.",
        )

    @expose("/convert/<int:pk>", methods=["POST"])
    @has_access
    def convert(self, pk: int):
        return self._act(
            pk,
            lambda: services.convert_quotation(pk, request.form.get("due_date") or None),
            lambda invoice: f"Draft invoice #{invoice.id} created from the quotation.",
            lambda invoice: url_for("InvoiceView.show", pk=invoice.id),
        )


# ---- invoices and payments --------------------------------------------------------------------


class InvoiceView(_LinedDocumentView):
    datamodel = CrmSQLAInterface(Invoice)
    get_document = staticmethod(services.get_invoice)
    add_document_line = staticmethod(services.add_invoice_line)
    remove_document_line = staticmethod(services.remove_invoice_line)
    render_pdf = staticmethod(invoice_pdf)
    class_permission_name = "Invoice"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "issue": DECIDE,
        "void": DECIDE,
        "payment": REPAY,
        "payment_link": REPAY,
        "add_line": "write",
        "remove_line": "write",
        "pdf": "read",
    }
    base_permissions = INVOICE_PERMISSIONS
    record_type = "invoice"
    show_template = "crm/invoice_show.html"
    list_title = "Invoices"
    list_columns = [
        "number",
        "client",
        "issue_date",
        "due_date",
        "status",
        "total",
        "amount_paid",
        "balance_due",
    ]
    show_columns = [
        "number",
        "client",
        "status",
        "issue_date",
        "due_date",
        "notes",
        "subtotal",
        "tax_total",
        "total",
        "amount_paid",
        "balance_due",
        "created_by",
        "created_at",
    ]
    search_columns = ["number", "client", "status", "due_date", "issue_date"]
    order_columns = ["number", "issue_date", "due_date", "total"]
    base_order = ("id", "desc")
    label_columns = {
        "tax_total": "Tax",
        "amount_paid": "Paid",
        "balance_due": "Balance due",
        "created_at": "Created (UTC)",
    }
    formatters_columns = {
        "status": display_choice,
        "subtotal": display_money,
        "tax_total": display_money,
        "total": display_money,
        "amount_paid": display_money,
        "balance_due": display_money,
        "created_at": display_timestamp,
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return self._new("New invoice", services.create_invoice, ("due_date", "Due date"))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The page lists its lines and payments (with who recorded each): read with the invoice.
        self.datamodel.show_relations += ("lines", "payments.recorded_by")

    def _get_show_widget(self, pk, item, **kwargs):
        """The page of the invoice FAB read (with its lines and payments): also the ledger
        entries of the invoice and of its payments, in one statement, and the products a new
        line is chosen from, only while the draft can be changed."""
        editable = item.status == "draft" and self.appbuilder.sm.has_access("can_write", "Invoice")
        self.extra_args = {
            **self.extra_args,
            "invoice": item,
            "products": _active_products() if editable else [],
            "payments": item.payments,
            "entries": entries_for(item, *item.payments),
            "payment_methods": PAYMENT_METHODS,
            "money": display_money,
            "quantity": display_units,
        }
        return super()._get_show_widget(pk, item, **kwargs)

    @expose("/issue/<int:pk>", methods=["POST"])
    @has_access
    def issue(self, pk: int):
        return self._act(
            pk,
            lambda: services.issue_invoice(pk, request.form.get("issue_date") or None),
            lambda invoice: f"Invoice {invoice.number} issued.",
        )

    @expose("/void/<int:pk>", methods=["POST"])
    @has_access
    def void(self, pk: int):
        return self._act(
            pk,
            lambda: services.void_invoice(pk, request.form.get("reason")),
            lambda invoice: f"{invoice!r} is void.",
        )

    @expose("/payment/<int:pk>", methods=["POST"])
    @has_access
    def payment(self, pk: int):
        return self._act(
            pk,
            lambda: once_per_form(
                "invoice payment", lambda: services.record_payment(pk, request.form)
            ),
            lambda p: (
                f"Payment of {p.amount:,.2f} recorded; balance due {p.invoice.balance_due:,.2f}."
            ),
        )

    @expose("/payment-link/<int:pk>", methods=["POST"])
    @has_access
    def payment_link(self, pk: int):
        from app.payments.services import link_for_invoice

        return self._act(
            pk,
            lambda: link_for_invoice(pk),
            lambda link: f"Payment link for {link.amount:,.2f} {link.currency}: {link.url}",
        )


class PaymentView(ServiceModelView):
    """Every payment received (read-only here: payments are recorded on the invoice's page)."""

    datamodel = CrmSQLAInterface(Payment)
    class_permission_name = "Invoice"
    base_permissions = INVOICE_PERMISSIONS
    list_title = "Payments"
    list_columns = ["paid_on", "invoice", "amount", "method", "reference", "recorded_by"]
    show_columns = [*list_columns, "journal_entry_id", "created_at"]
    search_columns = ["paid_on", "method", "reference"]
    order_columns = ["paid_on", "amount"]
    base_order = ("id", "desc")
    label_columns = {"journal_entry_id": "Journal entry", "created_at": "Recorded (UTC)"}
    formatters_columns = {
        "amount": display_money,
        "method": display_choice,
        "created_at": display_timestamp,
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        flash("Record a payment on the invoice's page.", "info")
        return redirect(url_for("InvoiceView.list"))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(404)

    @expose("/delete/<pk>", methods=["GET", "POST"])
    @has_access
    def delete(self, pk):
        abort(404)


# ---- contracts --------------------------------------------------------------------------------


class ContractView(_BillingView):
    datamodel = CrmSQLAInterface(Contract)
    class_permission_name = "Contract"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "move": "write",
        "upload": "write",
        "file": "read",
    }
    base_permissions = ["can_read", "can_write", "can_delete"]
    prepare = staticmethod(services.prepare_contract)
    record_type = "contract"
    show_template = "crm/contract_show.html"
    list_title = "Contracts"
    list_columns = ["title", "client", "value", "start_date", "renewal_date", "status"]
    show_columns = [
        "title",
        "client",
        "status",
        "value",
        "start_date",
        "end_date",
        "renewal_date",
        "terms",
        "document",
        "created_by",
        "created_at",
    ]
    add_columns = [
        "client",
        "title",
        "terms",
        "value",
        "start_date",
        "end_date",
        "renewal_date",
    ]
    edit_columns = add_columns
    search_columns = ["title", "client", "status", "renewal_date"]
    order_columns = ["title", "start_date", "renewal_date", "value"]
    base_order = ("id", "desc")
    label_columns = {"document": "Signed file", "created_at": "Created (UTC)"}
    formatters_columns = {
        "value": display_money,
        "status": display_choice,
        "created_at": display_timestamp,
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            contract = services.get_contract(int(pk))
        except (NotFound, ValueError):
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "contract": contract,
            "next_moves": services.CONTRACT_MOVES[contract.status],
            "statuses": CONTRACT_STATUSES,
        }
        return super().show(pk)

    @expose("/move/<int:pk>", methods=["POST"])
    @has_access
    def move(self, pk: int):
        return self._act(
            pk,
            lambda: services.move_contract(pk, request.form.get("to", "")),
            lambda c: f"The contract is now {c.status}.",
        )

    @expose("/upload/<int:pk>", methods=["POST"])
    @has_access
    def upload(self, pk: int):
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Not done: choose the signed file to upload.", "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return self._act(
            pk,
            lambda: services.attach_signed_file(pk, upload.filename, upload.read()),
            lambda c: f"Signed file {c.document.original_name} stored.",
        )

    @expose("/file/<int:pk>")
    @has_access
    def file(self, pk: int):
        """The signed file, through the same audited path as every download."""
        try:
            contract = services.get_contract(pk)
            if contract.document_id is None:
                raise NotFound("no signed file.")
            download = open_document(contract.document_id)
        except NotFound:
            abort(404)
        if download.url:
            return redirect(download.url)
        return file_response(download)
