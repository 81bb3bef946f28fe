"""Loyalty screens: vouchers, every points change (read-only), and the Redeem page."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from sqlalchemy import select

from app.clients.models import Client
from app.core.crud import CrmSQLAInterface, ServiceModelView, run_action
from app.core.forms import display_timestamp
from app.extensions import db
from app.forex.views import ACTIVE_FIELD, RW_PERMISSIONS
from app.loyalty import services
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction, Voucher
from app.security.scoping import UNSCOPED


class VoucherView(ServiceModelView):
    datamodel = CrmSQLAInterface(Voucher)
    class_permission_name = "Loyalty"
    base_permissions = RW_PERMISSIONS
    prepare = staticmethod(services.prepare_voucher)
    list_title = "Vouchers"
    list_columns = ["code", "name", "points_cost", "stock", "active"]
    show_columns = list_columns
    add_columns = edit_columns = list_columns
    add_form_extra_fields = edit_form_extra_fields = ACTIVE_FIELD
    description_columns = {"stock": "How many are left to give; empty for no limit."}


class LoyaltyTransactionView(ServiceModelView):
    """Every change of a client's points, with the total after it (read-only)."""

    datamodel = CrmSQLAInterface(LoyaltyTransaction)
    class_permission_name = "Loyalty"
    base_permissions = RW_PERMISSIONS
    list_title = "Loyalty transactions"
    list_template = "crm/loyalty_list.html"
    list_columns = ["created_at", "client", "reason", "points", "balance_after", "note"]
    show_columns = [*list_columns, "source_type", "source_id", "created_by"]
    search_columns = ["client", "reason"]
    base_order = ("id", "desc")
    label_columns = {"balance_after": "Points after", "created_at": "When (UTC)"}
    formatters_columns = {"created_at": display_timestamp}

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return redirect(url_for("RedeemView.page"))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        return redirect(url_for("LoyaltyTransactionView.list"))


class RedeemView(BaseView):
    """Spend a client's points on a voucher."""

    route_base = "/loyalty"
    class_permission_name = "Loyalty"
    method_permission_name = {"page": "read", "redeem": "write"}
    base_permissions = RW_PERMISSIONS
    default_view = "page"

    @expose("/redeem", methods=["GET"])
    @has_access
    def page(self):
        clients = db.session.scalars(select(Client).order_by(Client.name).limit(500)).all()
        points = {a.client_id: a.points for a in db.session.scalars(select(LoyaltyAccount))}
        vouchers = db.session.scalars(
            select(Voucher).where(Voucher.active.is_(True)).order_by(Voucher.points_cost),
            execution_options=UNSCOPED,
        ).all()
        return self.render_template(
            "crm/loyalty_redeem.html",
            title="Redeem a voucher",
            clients=clients,
            points=points,
            vouchers=vouchers,
            chosen=request.args.get("client_id", ""),
        )

    @expose("/redeem", methods=["POST"])
    @has_access
    def redeem(self):
        redemption, refusal = run_action(
            lambda: services.redeem(request.form), "voucher_redemption"
        )
        if refusal:
            flash(f"Not redeemed: {refusal}", "danger")
        else:
            flash(
                f"{redemption.voucher.name} redeemed for {redemption.points} points; "
                f"{services.points_of(redemption.client_id)} points left.",
                "success",
            )
        return redirect(url_for("RedeemView.page", client_id=request.form.get("client_id", "")))
