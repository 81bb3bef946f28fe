"""Brokerage screens: instruments, trades (recorded through the service; settle and cancel on
the trade's page) and a client's portfolio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.fieldwidgets import DatePickerWidget
from wtforms import DateField
from wtforms.validators import Optional

from app.brokerage import services
from app.brokerage.models import INSTRUMENT_KINDS, RISK_LEVELS, SIDES, Instrument, Trade
from app.core.crud import CrmSQLAInterface, NoButtonsForMissingRoutes, ServiceModelView, run_action
from app.core.errors import NotFound
from app.core.forms import (
    choice_field,
    display_choice,
    display_money,
    display_timestamp,
    display_units,
)
from app.security.roles import DECIDE, READ, WRITE
from app.security.scoping import current_actor

TRADE_PERMISSIONS = ["can_read", "can_write", "can_decide"]
"""Shared by every screen and API of the Trade resource (FAB needs them identical)."""
INSTRUMENT_PERMISSIONS = ["can_read", "can_write"]


def display_flag(value: bool | None) -> str:
    return "⚠ Flagged" if value else ""


class InstrumentView(NoButtonsForMissingRoutes, ServiceModelView):
    datamodel = CrmSQLAInterface(Instrument)
    class_permission_name = "Instrument"
    method_permission_name = {"list": READ, "show": READ, "add": WRITE, "edit": WRITE}
    base_permissions = INSTRUMENT_PERMISSIONS
    exclude_route_methods = {"delete", "download", "action", "action_post", "api_read"}
    prepare = staticmethod(services.prepare_instrument)
    list_title = "Instruments"
    list_columns = [
        "symbol",
        "name",
        "kind",
        "exchange",
        "currency",
        "risk_level",
        "last_price",
        "last_price_at",
        "active",
    ]
    show_columns = list_columns
    add_columns = edit_columns = [
        "symbol",
        "name",
        "kind",
        "exchange",
        "currency",
        "risk_level",
        "last_price",
        "active",
    ]
    search_columns = ["symbol", "name", "kind", "exchange", "risk_level", "active"]
    order_columns = ["symbol", "name", "last_price_at"]
    base_order = ("symbol", "asc")
    label_columns = {"last_price_at": "Price as of (UTC)", "kind": "Type"}
    add_form_extra_fields = {
        "kind": choice_field("Type", INSTRUMENT_KINDS),
        "risk_level": choice_field("Risk level", RISK_LEVELS),
    }
    edit_form_extra_fields = add_form_extra_fields
    formatters_columns = {
        "kind": display_choice,
        "risk_level": display_choice,
        "last_price": display_units,
        "last_price_at": display_timestamp,
    }


class TradeView(NoButtonsForMissingRoutes, ServiceModelView):
    datamodel = CrmSQLAInterface(Trade)
    class_permission_name = "Trade"
    method_permission_name = {
        "list": READ,
        "show": READ,
        "add": WRITE,
        "settle": DECIDE,
        "cancel": DECIDE,
    }
    base_permissions = TRADE_PERMISSIONS
    exclude_route_methods = {"edit", "delete", "download", "action", "action_post", "api_read"}
    prepare = staticmethod(services.prepare_trade)
    show_template = "crm/trade_show.html"
    list_title = "Trades"
    list_columns = [
        "id",
        "trade_date",
        "client",
        "instrument",
        "side",
        "quantity",
        "price",
        "fees",
        "gross_amount",
        "status",
        "suitability_flag",
        "realised_pnl",
    ]
    show_columns = [
        "id",
        "client",
        "instrument",
        "side",
        "quantity",
        "price",
        "gross_amount",
        "fees",
        "trade_date",
        "status",
        "suitability_flag",
        "suitability_reason",
        "cost_of_sold",
        "realised_pnl",
        "settled_at",
        "cancelled_at",
        "created_by",
        "created_at",
    ]
    add_columns = ["client", "instrument", "side", "quantity", "price", "fees", "trade_date"]
    search_columns = ["client", "instrument", "side", "status", "suitability_flag", "trade_date"]
    order_columns = ["id", "trade_date", "status", "gross_amount"]
    base_order = ("id", "desc")
    label_columns = {
        "id": "Trade #",
        "gross_amount": "Gross",
        "suitability_flag": "Suitability",
        "suitability_reason": "Suitability note",
        "realised_pnl": "Realised P&L",
        "cost_of_sold": "Cost of units sold",
        "settled_at": "Settled (UTC)",
        "cancelled_at": "Cancelled (UTC)",
        "created_at": "Recorded (UTC)",
    }
    add_form_extra_fields = {
        "side": choice_field("Side", SIDES),
        "trade_date": DateField(
            "Trade date", validators=[Optional()], widget=DatePickerWidget(), format="%Y-%m-%d"
        ),
    }
    description_columns = {
        "quantity": "Units, up to 6 decimals.",
        "price": "Price per unit, up to 6 decimals.",
        "fees": "Brokerage charged, in whole cents.",
        "trade_date": "YYYY-MM-DD; today if empty.",
    }
    formatters_columns = {
        "side": display_choice,
        "status": display_choice,
        "quantity": display_units,
        "price": display_units,
        "fees": display_money,
        "gross_amount": display_money,
        "cost_of_sold": display_money,
        "realised_pnl": display_money,
        "suitability_flag": display_flag,
        "settled_at": display_timestamp,
        "cancelled_at": display_timestamp,
        "created_at": display_timestamp,
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            trade = services.get_trade(pk)
        except NotFound:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "trade": trade,
            "may_decide": services.may(current_actor(), DECIDE),
        }
        return super().show(pk)

    def _act(self, pk: int, action: Callable[[], Any], done: Callable[[Any], str]):
        result, refusal = run_action(action, "trade")
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(done(result), "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/settle/<int:pk>", methods=["POST"])
    @has_access
    def settle(self, pk: int):
        return self._act(
            pk,
            lambda: services.settle_trade(pk),
            lambda t: (
                f"{t.reference} settled."
                + (f" Realised P&L {t.realised_pnl:,.2f}." if t.side == "sell" else "")
            ),
        )

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access
    def cancel(self, pk: int):
        return self._act(
            pk, lambda: services.cancel_trade(pk), lambda t: f"{t.reference} cancelled."
        )


class PortfolioView(BaseView):
    """A client's holdings: quantity, average cost, market value, unrealised and realised P&L."""

    route_base = "/portfolio"
    class_permission_name = "Trade"
    method_permission_name = {"client": READ}
    base_permissions = TRADE_PERMISSIONS
    default_view = "client"

    @expose("/<int:pk>")
    @has_access
    def client(self, pk: int):
        try:
            report = services.portfolio(pk)
        except NotFound:
            abort(404)
        return self.render_template(
            "crm/portfolio.html",
            title=f"Portfolio of {report.client.name}",
            portfolio=report,
            money=display_money,
            units=display_units,
        )
