"""Payment links, provider events and parked credits over the API: read like any record (FAB's
filters); an open credit is resolved with ``POST /api/v1/paymentcredit/<id>/resolve``, under
the same rules as its screen. Links themselves are made on the invoice, loan application and
wallet APIs (docs/payments.md)."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.crud import CrmSQLAInterface, ReadOnlyRestApi, json_body, readable_columns
from app.payments import credits
from app.payments.models import PaymentCredit, PaymentEvent, PaymentIntent
from app.payments.views import CREDIT_PERMISSIONS, LINK_PERMISSIONS
from app.security.roles import API_METHOD_ACTIONS, WRITE


class PaymentIntentApi(ReadOnlyRestApi):
    """Payment links and their status (pending, succeeded, failed, refunded, parked)."""

    resource_name = "paymentintent"
    datamodel = CrmSQLAInterface(PaymentIntent)
    class_permission_name = "PaymentLink"
    base_permissions = LINK_PERMISSIONS
    list_columns = show_columns = readable_columns(PaymentIntent)
    search_columns = ["status", "purpose", "provider", "invoice_id", "application_id", "wallet_id"]
    base_order = ("id", "desc")


class PaymentEventApi(ReadOnlyRestApi):
    """The events providers sent, once per event id, with what each did."""

    resource_name = "paymentevent"
    datamodel = CrmSQLAInterface(PaymentEvent)
    class_permission_name = "PaymentLink"
    base_permissions = LINK_PERMISSIONS
    list_columns = show_columns = readable_columns(PaymentEvent)
    search_columns = ["provider", "event_id", "event_type", "intent_id"]
    base_order = ("id", "desc")


class PaymentCreditApi(ReadOnlyRestApi):
    """Parked credits; ``/<id>/resolve`` applies one to the client's invoice or loan, or records
    its refund at the provider."""

    resource_name = "paymentcredit"
    datamodel = CrmSQLAInterface(PaymentCredit)
    class_permission_name = "PaymentCredit"
    base_permissions = CREDIT_PERMISSIONS
    method_permission_name = {**API_METHOD_ACTIONS, "resolve": WRITE}
    include_route_methods = {"get", "get_list", "info", "resolve"}
    list_columns = show_columns = readable_columns(PaymentCredit)
    search_columns = ["status", "resolution", "intent_id", "currency"]
    base_order = ("id", "desc")

    @expose("/<int:pk>/resolve", methods=["POST"])
    @protect()
    @safe
    def resolve(self, pk: int):
        """Resolve an open credit: ``{"resolution": "applied", "invoice_id": 12}`` (or
        ``"application_id"``), or ``{"resolution": "refunded", "note": "re_123"}``.
        ---
        post:
          responses:
            200: {description: the credit, resolved}
            404: {$ref: '#/components/responses/404'}
            409: {description: already resolved}
            422: {description: what to fix}
        """
        body = json_body()
        return self.run_workflow(lambda: credits.resolve_credit(pk, body), credits.credit_json)
