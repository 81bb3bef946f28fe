"""Finance screens of the payment gateway: every payment link and what became of it (with the
provider's events), and the parked credits staff review and resolve."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from sqlalchemy import select

from app.core.crud import CrmSQLAInterface, NoButtonsForMissingRoutes, ServiceModelView, run_action
from app.core.errors import NotFound
from app.core.forms import display_choice, display_money, display_timestamp
from app.extensions import db
from app.payments import credits
from app.payments.models import CREDIT_RESOLUTIONS, PaymentCredit, PaymentEvent, PaymentIntent
from app.security.roles import VIEW_METHOD_ACTIONS, WRITE

LINK_PERMISSIONS = ["can_read"]
CREDIT_PERMISSIONS = ["can_read", "can_write"]
"""Shared by every screen and API of each resource (FAB needs them identical)."""

_MONEY_AND_TIMES = {
    "amount": display_money,
    "status": display_choice,
    "purpose": display_choice,
    "created_at": display_timestamp,
    "paid_at": display_timestamp,
    "received_at": display_timestamp,
    "resolved_at": display_timestamp,
}


class PaymentIntentView(NoButtonsForMissingRoutes, ServiceModelView):
    """Payment links (made on an invoice, loan application or wallet page): read-only here."""

    datamodel = CrmSQLAInterface(PaymentIntent)
    class_permission_name = "PaymentLink"
    base_permissions = LINK_PERMISSIONS
    include_route_methods = {"list", "show", "export_list"}
    show_template = "crm/payment_intent_show.html"
    list_title = "Payment links"
    list_columns = ["id", "created_at", "purpose", "pays", "amount", "currency", "status"]
    show_columns = [
        "id",
        "provider",
        "provider_reference",
        "url",
        "purpose",
        "pays",
        "amount",
        "currency",
        "status",
        "note",
        "created_by",
        "created_at",
        "paid_at",
    ]
    search_columns = ["status", "purpose", "provider", "created_at", "invoice_id", "wallet_id"]
    order_columns = ["id", "created_at", "amount"]
    base_order = ("id", "desc")
    label_columns = {"id": "Link", "pays": "Pays", "provider_reference": "Provider reference"}
    formatters_columns = _MONEY_AND_TIMES

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        intent = db.session.get(PaymentIntent, int(pk)) if str(pk).isdigit() else None
        if intent is None:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "intent": intent,
            "events": db.session.scalars(
                select(PaymentEvent)
                .where(PaymentEvent.intent_id == intent.id)
                .order_by(PaymentEvent.id)
            ).all(),
            "credits": db.session.scalars(
                select(PaymentCredit)
                .where(PaymentCredit.intent_id == intent.id)
                .order_by(PaymentCredit.id)
            ).all(),
        }
        return super().show(pk)


class PaymentEventView(NoButtonsForMissingRoutes, ServiceModelView):
    """Every event a provider sent about a link, once per event id, with what it did."""

    datamodel = CrmSQLAInterface(PaymentEvent)
    class_permission_name = "PaymentLink"
    base_permissions = LINK_PERMISSIONS
    include_route_methods = {"list", "show", "export_list"}
    list_title = "Provider events"
    list_columns = ["received_at", "provider", "event_id", "event_type", "intent", "outcome"]
    show_columns = [*list_columns, "amount", "currency", "provider_reference"]
    search_columns = ["provider", "event_id", "event_type", "received_at"]
    order_columns = ["received_at"]
    base_order = ("id", "desc")
    label_columns = {"intent": "Link", "event_type": "Event"}
    formatters_columns = {**_MONEY_AND_TIMES, "event_type": display_choice}


class PaymentCreditView(NoButtonsForMissingRoutes, ServiceModelView):
    """Money collected that its desk refused (an overpayment, a paid invoice, a repaid loan):
    open ones first; each is applied to the client's invoice or loan, or marked refunded."""

    datamodel = CrmSQLAInterface(PaymentCredit)
    class_permission_name = "PaymentCredit"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "resolve": WRITE}
    base_permissions = CREDIT_PERMISSIONS
    include_route_methods = {"list", "show", "export_list", "resolve"}
    show_template = "crm/payment_credit_show.html"
    list_title = "Parked credits"
    list_columns = ["id", "created_at", "intent", "amount", "currency", "status", "reason"]
    show_columns = [
        *list_columns,
        "resolution",
        "resolution_note",
        "resolved_by",
        "resolved_at",
    ]
    search_columns = ["status", "resolution", "created_at", "currency"]
    order_columns = ["id", "created_at", "amount"]
    base_order = ("id", "desc")
    label_columns = {"id": "Credit", "intent": "Link", "resolution_note": "How resolved"}
    formatters_columns = {**_MONEY_AND_TIMES, "resolution": display_choice}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            credit = credits.get_credit(pk)
        except NotFound:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "credit": credit,
            "resolutions": CREDIT_RESOLUTIONS,
            "may_resolve": self.appbuilder.sm.has_access("can_write", "PaymentCredit"),
        }
        return super().show(pk)

    @expose("/resolve/<int:pk>", methods=["POST"])
    @has_access
    def resolve(self, pk: int):
        credit, refusal = run_action(
            lambda: credits.resolve_credit(pk, request.form), "payment_credit"
        )
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(f"Credit #{pk} resolved: {credit.resolution_note}.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))
