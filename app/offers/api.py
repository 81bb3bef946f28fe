"""Offers API: offers (checked by the same service as the screens), their audience preview, and
``POST /api/v1/offer/<id>/run`` to send one now."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, ReadOnlyRestApi, ServiceModelRestApi, readable_columns
from app.core.errors import DomainError
from app.extensions import db
from app.offers import services
from app.offers.models import Offer, OfferDelivery
from app.offers.views import OFFER_FIELDS
from app.security.roles import API_METHOD_ACTIONS


class OfferApi(ServiceModelRestApi):
    resource_name = "offer"
    datamodel = CrmSQLAInterface(Offer)
    class_permission_name = "Offer"
    method_permission_name = {**API_METHOD_ACTIONS, "run": "write", "audience": "read"}
    prepare = staticmethod(services.prepare_offer)
    allow_browser_login = True
    list_columns = show_columns = ["id", *OFFER_FIELDS, "created_by_id", "created_at"]
    add_columns = edit_columns = OFFER_FIELDS

    def pre_delete(self, item: Offer) -> None:
        services.refuse_delete_when_sent(item)

    @expose("/<int:pk>/audience", methods=["GET"])
    @protect()
    @safe
    def audience(self, pk: int):
        """How many clients the offer would reach now (counted up to a cap)."""
        try:
            offer = services.get_offer(pk)
            count, capped = services.preview_audience(offer)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(
            200, count=count, at_least=capped, text=services.describe_audience(offer)
        )

    @expose("/<int:pk>/run", methods=["POST"])
    @protect()
    @safe
    def run(self, pk: int):
        """Send the offer now to every client it picks and has not reached; answers how many."""
        try:
            sent = services.run_offer_now(pk)
        except DomainError as exc:
            db.session.rollback()
            record_rejection("offer", str(exc))
            return self.response(exc.status, **exc.as_json())
        return self.response(200, sent=sent)


class OfferDeliveryApi(ReadOnlyRestApi):
    """Which client got which offer and when (claimed by the sending job, once per client)."""

    resource_name = "offerdelivery"
    datamodel = CrmSQLAInterface(OfferDelivery)
    class_permission_name = "OfferDelivery"
    base_permissions = ["can_read"]
    list_columns = show_columns = readable_columns(OfferDelivery)
    search_columns = ["offer_id", "client_id"]
    base_order = ("id", "desc")
