"""Loyalty API: vouchers, points changes (read-only) and redemption."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.crud import CrmSQLAInterface, ReadOnlyRestApi, json_body, readable_columns
from app.forex.api import _ActionApi
from app.forex.views import RW_PERMISSIONS
from app.loyalty import services
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction, Voucher, VoucherRedemption


class VoucherApi(_ActionApi):
    resource_name = "voucher"
    datamodel = CrmSQLAInterface(Voucher)
    class_permission_name = "Loyalty"
    base_permissions = RW_PERMISSIONS
    prepare = staticmethod(services.prepare_voucher)
    include_route_methods = {"get", "get_list", "info", "post", "put"}
    list_columns = show_columns = ["id", "code", "name", "points_cost", "stock", "active"]
    add_columns = edit_columns = ["code", "name", "points_cost", "stock", "active"]


class LoyaltyApi(_ActionApi):
    resource_name = "loyalty"
    datamodel = CrmSQLAInterface(LoyaltyTransaction)
    class_permission_name = "Loyalty"
    method_permission_name = {"get_list": "read", "get": "read", "info": "read", "redeem": "write"}
    base_permissions = RW_PERMISSIONS
    include_route_methods = {"get", "get_list", "info", "redeem"}
    list_columns = show_columns = [
        "id",
        "client_id",
        "points",
        "balance_after",
        "reason",
        "source_type",
        "source_id",
        "note",
        "created_at",
    ]
    search_columns = ["client_id", "reason"]
    base_order = ("id", "desc")

    @expose("/redeem", methods=["POST"])
    @protect()
    @safe
    def redeem(self):
        """Spend a client's points on a voucher (``{"client_id": 1, "voucher_id": 2}``).
        ---
        post:
          responses:
            201: {description: the redemption and the points left}
            404: {description: no such client}
            409: {description: the voucher is inactive or out of stock}
            422: {description: not enough points, naming both numbers}
        """
        return self.run_workflow(
            lambda: services.redeem(json_body()),
            lambda r: {
                "id": r.id,
                "client_id": r.client_id,
                "voucher_id": r.voucher_id,
                "points": r.points,
                "points_left": services.points_of(r.client_id),
            },
            201,
        )


class LoyaltyAccountApi(ReadOnlyRestApi):
    """A client's points balance (changed only by exchanges and redemptions)."""

    resource_name = "loyaltyaccount"
    datamodel = CrmSQLAInterface(LoyaltyAccount)
    class_permission_name = "Loyalty"
    base_permissions = RW_PERMISSIONS
    list_columns = show_columns = readable_columns(LoyaltyAccount)
    search_columns = ["client_id"]


class VoucherRedemptionApi(ReadOnlyRestApi):
    """Vouchers redeemed (by ``POST /api/v1/loyalty/redeem``)."""

    resource_name = "voucherredemption"
    datamodel = CrmSQLAInterface(VoucherRedemption)
    class_permission_name = "Loyalty"
    base_permissions = RW_PERMISSIONS
    list_columns = show_columns = readable_columns(VoucherRedemption)
    search_columns = ["client_id", "voucher_id"]
    base_order = ("id", "desc")
