"""Read-only lists behind the charts whose records a desk list cannot filter the same way.

A desk's own list filters on its model's columns only: the invoice list has no branch (the
client has), the document list cannot tell a current version from a superseded one, and no list
shows instalments. Each class here is the desk's model itself (single-table inheritance: no new
table, the same rows, the same row scoping, since scoping criteria on a model apply to its
subclasses) with the few columns a dashboard filters on computed in SQL (``column_property``).
Each list is read under the desk's own permission, and every row links to the desk's page.
"""

from __future__ import annotations

from flask import url_for
from flask_appbuilder import ModelView
from flask_appbuilder.models.sqla.filters import FilterGreater
from flask_appbuilder.models.sqla.interface import SQLAInterface
from markupsafe import Markup
from sqlalchemy import and_, case, exists, select
from sqlalchemy.orm import aliased, column_property

from app.billing.models import Invoice
from app.clients.models import Client
from app.core.crud import NoButtonsForMissingRoutes
from app.core.forms import display_choice, display_money, display_timestamp
from app.core.localtime import LocalTimeColumnsMixin
from app.documents.models import Document
from app.forex.models import FxExchange
from app.kyc.models import KycCase
from app.lending.models import LoanApplication, LoanInstalment
from app.org.models import Branch

LIST_ONLY = {"show", "add", "edit", "delete", "download", "action", "action_post"}
TIMELINESS = ("on_time", "paid_late", "unpaid")


def _of_client(column, client_fk):
    """A column of the record's client, as a correlated scalar subquery."""
    return column_property(
        select(column).where(Client.id == client_fk).correlate_except(Client).scalar_subquery()
    )


def _client_branch_name(client_fk):
    return column_property(
        select(Branch.name)
        .join(Client, Client.branch_id == Branch.id)
        .where(Client.id == client_fk)
        .correlate_except(Branch, Client)
        .scalar_subquery()
    )


def _link(endpoint: str, pk: int, text: object) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(f"{endpoint}.show", pk=pk), text)


class OutstandingInvoice(Invoice):
    """An invoice with its client's branch and relationship manager."""

    branch_id = _of_client(Client.branch_id, Invoice.client_id)
    agent_id = _of_client(Client.relationship_manager_id, Invoice.client_id)
    branch_name = _client_branch_name(Invoice.client_id)

    @property
    def invoice_link(self) -> Markup:
        return _link("InvoiceView", self.id, self.number or f"draft #{self.id}")


class ClientExchange(FxExchange):
    """A currency exchange with its client's branch and relationship manager."""

    branch_id = _of_client(Client.branch_id, FxExchange.client_id)
    agent_id = _of_client(Client.relationship_manager_id, FxExchange.client_id)
    branch_name = _client_branch_name(FxExchange.client_id)

    @property
    def exchange_link(self) -> Markup:
        return _link("FxExchangeView", self.id, self.reference)


class ClientKycCase(KycCase):
    """A KYC case with its client's branch and relationship manager."""

    branch_id = _of_client(Client.branch_id, KycCase.client_id)
    agent_id = _of_client(Client.relationship_manager_id, KycCase.client_id)
    branch_name = _client_branch_name(KycCase.client_id)

    @property
    def case_link(self) -> Markup:
        return _link("KycCaseView", self.id, f"#{self.id}")


_newer = aliased(Document)


class ClientDocument(Document):
    """A client's document, whether it is the newest version of its type (only those expire
    in earnest: a superseded passport no longer matters), and the client's branch and manager."""

    branch_id = _of_client(Client.branch_id, Document.client_id)
    agent_id = _of_client(Client.relationship_manager_id, Document.client_id)
    branch_name = _client_branch_name(Document.client_id)
    current = column_property(
        ~exists(
            select(_newer.id).where(
                _newer.client_id == Document.client_id,
                _newer.doc_type == Document.doc_type,
                _newer.version > Document.version,
            )
        )
    )

    @property
    def document_link(self) -> Markup:
        return _link("DocumentView", self.id, repr(self))


def _of_application(column):
    return column_property(
        select(column)
        .where(LoanApplication.id == LoanInstalment.application_id)
        .correlate_except(LoanApplication)
        .scalar_subquery()
    )


def timeliness_of(instalment) -> object:
    """``on_time`` (paid in full by its due date), ``paid_late`` or ``unpaid`` (nothing or part
    paid), in SQL."""
    return case(
        (
            and_(instalment.status == "paid", instalment.paid_on <= instalment.due_date),
            "on_time",
        ),
        (instalment.status == "paid", "paid_late"),
        else_="unpaid",
    )


class DueInstalment(LoanInstalment):
    """An instalment with how it was paid and its application's branch, BDM and broker."""

    timeliness = column_property(timeliness_of(LoanInstalment))
    branch_id = _of_application(LoanApplication.branch_id)
    bdm_id = _of_application(LoanApplication.bdm_id)
    broker_id = _of_application(LoanApplication.broker_id)
    reference = _of_application(LoanApplication.reference)
    branch_name = column_property(
        select(Branch.name)
        .join(LoanApplication, LoanApplication.branch_id == Branch.id)
        .where(LoanApplication.id == LoanInstalment.application_id)
        .correlate_except(Branch, LoanApplication)
        .scalar_subquery()
    )

    @property
    def application_link(self) -> Markup:
        return _link(
            "LoanApplicationView", self.application_id, self.reference or f"#{self.application_id}"
        )


class ComputedColumnsInterface(SQLAInterface):
    """FAB's data interface for models with computed columns (``column_property``), which
    have no ``nullable`` flag of their own: a computed value may always be empty."""

    def is_nullable(self, col_name: str) -> bool:
        column = self.list_columns.get(col_name)
        if column is not None and not hasattr(column, "nullable"):
            return True
        return super().is_nullable(col_name)

    def is_unique(self, col_name: str) -> bool:
        column = self.list_columns.get(col_name)
        if column is not None and not hasattr(column, "unique"):
            return False
        return super().is_unique(col_name)


class _DrillDownList(LocalTimeColumnsMixin, NoButtonsForMissingRoutes, ModelView):
    """A read-only list; ``class_permission_name`` is the desk's resource."""

    method_permission_name = {"list": "read"}
    exclude_route_methods = LIST_ONLY
    page_size = 25


class OutstandingInvoiceListView(_DrillDownList):
    route_base = "/dashboards/invoices"
    datamodel = ComputedColumnsInterface(OutstandingInvoice)
    class_permission_name = "Invoice"
    list_title = "Invoices (from the billing dashboard)"
    list_columns = [
        "invoice_link",
        "client",
        "branch_name",
        "issue_date",
        "due_date",
        "status",
        "total",
        "amount_paid",
    ]
    search_columns = ["status", "due_date", "issue_date", "client", "branch_id", "agent_id"]
    order_columns = ["due_date", "issue_date", "total"]
    base_order = ("due_date", "asc")
    label_columns = {
        "invoice_link": "Invoice",
        "branch_name": "Branch",
        "branch_id": "Branch (id)",
        "agent_id": "Relationship manager (user id)",
    }
    formatters_columns = {
        "status": display_choice,
        "total": display_money,
        "amount_paid": display_money,
    }


class ClientExchangeListView(_DrillDownList):
    route_base = "/dashboards/exchanges"
    datamodel = ComputedColumnsInterface(ClientExchange)
    class_permission_name = "FxExchange"
    list_title = "Exchanges (from the forex dashboard)"
    list_columns = [
        "exchange_link",
        "client",
        "branch_name",
        "sell_amount",
        "sell_currency",
        "buy_amount",
        "buy_currency",
        "executed_at",
    ]
    search_columns = [
        "status",
        "sell_currency",
        "buy_currency",
        "executed_at",
        "client",
        "branch_id",
        "agent_id",
    ]
    order_columns = ["executed_at", "sell_amount"]
    base_order = ("executed_at", "desc")
    label_columns = {
        "exchange_link": "Exchange",
        "branch_name": "Branch",
        "branch_id": "Branch (id)",
        "agent_id": "Relationship manager (user id)",
    }
    formatters_columns = {
        "sell_amount": display_money,
        "buy_amount": display_money,
        "executed_at": display_timestamp,
    }


class ClientKycCaseListView(_DrillDownList):
    route_base = "/dashboards/kyccases"
    datamodel = ComputedColumnsInterface(ClientKycCase)
    class_permission_name = "KycCase"
    list_title = "KYC cases (from the compliance dashboard)"
    list_columns = ["case_link", "client", "branch_name", "status", "submitted_at", "reviewer"]
    search_columns = ["status", "reviewer_id", "submitted_at", "client", "branch_id", "agent_id"]
    order_columns = ["submitted_at"]
    base_order = ("submitted_at", "asc")
    label_columns = {
        "case_link": "Case",
        "branch_name": "Branch",
        "branch_id": "Branch (id)",
        "agent_id": "Relationship manager (user id)",
        "reviewer_id": "Reviewer (user id; empty: unassigned)",
    }
    formatters_columns = {"status": display_choice, "submitted_at": display_timestamp}


class ClientDocumentListView(_DrillDownList):
    route_base = "/dashboards/documents"
    datamodel = ComputedColumnsInterface(ClientDocument)
    class_permission_name = "Document"
    list_title = "Client documents (from the compliance dashboard)"
    list_columns = ["document_link", "client", "branch_name", "expires_on", "uploaded_at"]
    search_columns = ["current", "expires_on", "doc_type", "client", "branch_id", "agent_id"]
    base_filters = [["client_id", FilterGreater, 0]]
    """Clients' documents only (a lead's or an application's are not the client file)."""
    order_columns = ["expires_on", "uploaded_at"]
    base_order = ("expires_on", "asc")
    label_columns = {
        "document_link": "Document",
        "current": "Newest version",
        "branch_name": "Branch",
        "branch_id": "Branch (id)",
        "agent_id": "Relationship manager (user id)",
    }
    formatters_columns = {"uploaded_at": display_timestamp}


class DueInstalmentListView(_DrillDownList):
    route_base = "/dashboards/instalments"
    datamodel = ComputedColumnsInterface(DueInstalment)
    class_permission_name = "LoanApplication"
    list_title = "Loan instalments (from the lending dashboard)"
    list_columns = [
        "application_link",
        "number",
        "branch_name",
        "due_date",
        "total",
        "status",
        "paid_on",
        "timeliness",
    ]
    search_columns = ["timeliness", "due_date", "status", "branch_id", "bdm_id", "broker_id"]
    order_columns = ["due_date", "number"]
    base_order = ("due_date", "asc")
    label_columns = {
        "application_link": "Application",
        "branch_name": "Branch",
        "timeliness": "Paid",
        "branch_id": "Branch (id)",
        "bdm_id": "BDM (user id)",
        "broker_id": "Broker (id)",
    }
    formatters_columns = {
        "status": display_choice,
        "timeliness": display_choice,
        "total": display_money,
    }


DRILL_DOWN_VIEWS = (
    OutstandingInvoiceListView,
    ClientExchangeListView,
    ClientKycCaseListView,
    ClientDocumentListView,
    DueInstalmentListView,
)


def register_drill_down_views(builder) -> None:
    """Add the lists (no menu entries), after the desks' views: each declares its desk's
    permissions, since FAB keeps one set of permissions per resource and would otherwise try to
    drop the desk's others (only ``read``, for ``list``, is ever checked here)."""
    for view in DRILL_DOWN_VIEWS:
        desk = next(
            v
            for v in builder.baseviews
            if v.class_permission_name == view.class_permission_name
            and "can_read" in v.base_permissions
        )
        view.base_permissions = list(desk.base_permissions)
        builder.add_view_no_menu(view)
