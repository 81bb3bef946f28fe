"""Brokerage API: instruments, trades (recorded, settled and cancelled through the service) and
a client's portfolio at /api/v1/client/<id>/portfolio. Same row scoping as the screens: a
client outside the caller's scope, or its trades, are 404."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.api import BaseApi, expose, protect, safe

from app.brokerage import services
from app.brokerage.models import Instrument, InstrumentPrice, Position, Trade
from app.brokerage.views import INSTRUMENT_PERMISSIONS, TRADE_PERMISSIONS
from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.core.errors import DomainError
from app.security.roles import API_METHOD_ACTIONS, DECIDE, READ

TRADE_COLUMNS = [
    "id",
    "client_id",
    "instrument_id",
    "side",
    "quantity",
    "price",
    "fees",
    "gross_amount",
    "trade_date",
    "status",
    "suitability_flag",
    "suitability_reason",
    "cost_of_sold",
    "realised_pnl",
    "settled_at",
    "cancelled_at",
    "created_by_id",
    "created_at",
]


def _trade_json(trade: Trade) -> dict[str, Any]:
    def text(value):
        return None if value is None else str(value)

    return {
        "id": trade.id,
        "reference": trade.reference,
        "client_id": trade.client_id,
        "instrument_id": trade.instrument_id,
        "side": trade.side,
        "quantity": text(trade.quantity),
        "price": text(trade.price),
        "fees": text(trade.fees),
        "gross_amount": text(trade.gross_amount),
        "trade_date": trade.trade_date.isoformat(),
        "status": trade.status,
        "suitability_flag": trade.suitability_flag,
        "suitability_reason": trade.suitability_reason,
        "cost_of_sold": text(trade.cost_of_sold),
        "realised_pnl": text(trade.realised_pnl),
    }


class InstrumentApi(ServiceModelRestApi):
    resource_name = "instrument"
    datamodel = CrmSQLAInterface(Instrument)
    class_permission_name = "Instrument"
    base_permissions = INSTRUMENT_PERMISSIONS
    prepare = staticmethod(services.prepare_instrument)
    allow_browser_login = True
    include_route_methods = {"get", "get_list", "info", "post", "put"}
    list_columns = show_columns = [
        "id",
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
    search_columns = ["symbol", "name", "kind", "risk_level", "active"]


class TradeApi(ServiceModelRestApi):
    resource_name = "trade"
    datamodel = CrmSQLAInterface(Trade)
    class_permission_name = "Trade"
    method_permission_name = {**API_METHOD_ACTIONS, "settle": DECIDE, "cancel": DECIDE}
    base_permissions = TRADE_PERMISSIONS
    allow_browser_login = True
    include_route_methods = {"get", "get_list", "info", "post", "settle", "cancel"}
    list_columns = show_columns = TRADE_COLUMNS
    search_columns = ["client_id", "instrument_id", "side", "status", "suitability_flag"]
    order_columns = ["id", "trade_date", "status"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def post(self):
        """Record a pending trade (``{"client_id": 1, "instrument_id": 2, "side": "buy",
        "quantity": "100", "price": "10.00", "fees": "10.00", "trade_date": "2026-11-02"}``).
        ---
        post:
          responses:
            201: {description: the trade, with its gross amount and suitability flag}
            422: {description: the field at fault, e.g. a sell beyond the holding}
        """
        return self.run_workflow(lambda: services.record_trade(json_body()), _trade_json, 201)

    @expose("/<int:pk>/settle", methods=["POST"])
    @protect()
    @safe
    def settle(self, pk: int):
        """Settle a pending trade (``{"settled_on": "2026-11-03"}``, today if left out).
        ---
        post:
          responses:
            200: {description: the settled trade (a sell with its realised P&L)}
            404: {$ref: '#/components/responses/404'}
            409: {description: the trade is not pending}
        """
        return self.run_workflow(
            lambda: services.settle_trade(pk, json_body().get("settled_on")), _trade_json
        )

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    def cancel(self, pk: int):
        """Cancel a pending trade.
        ---
        post:
          responses:
            200: {description: the cancelled trade}
            404: {$ref: '#/components/responses/404'}
            409: {description: the trade is not pending}
        """
        return self.run_workflow(lambda: services.cancel_trade(pk), _trade_json)


class PortfolioApi(BaseApi):
    """GET /api/v1/client/<id>/portfolio (beside the client API's own routes)."""

    route_base = "/api/v1/client"
    resource_name = "client"
    class_permission_name = "Trade"
    method_permission_name = {"portfolio": READ}
    base_permissions = TRADE_PERMISSIONS
    allow_browser_login = True
    openapi_spec_tag = "Portfolio"

    @expose("/<int:pk>/portfolio", methods=["GET"])
    @protect()
    @safe
    def portfolio(self, pk: int):
        """A client's holdings and totals (amounts as strings, to the cent).
        ---
        get:
          responses:
            200: {description: holdings with quantity, average cost, market value, P&L}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            report = services.portfolio(pk)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(200, **report.as_json())


class PositionApi(ReadOnlyRestApi):
    """Holdings kept by settlement (quantity, cost, realised P&L per client and instrument);
    the portfolio call adds prices and market value."""

    resource_name = "position"
    datamodel = CrmSQLAInterface(Position)
    class_permission_name = "Trade"
    base_permissions = TRADE_PERMISSIONS
    list_columns = show_columns = readable_columns(Position)
    search_columns = ["client_id", "instrument_id"]


class InstrumentPriceApi(ReadOnlyRestApi):
    """The price history loaded from the feed."""

    resource_name = "instrumentprice"
    datamodel = CrmSQLAInterface(InstrumentPrice)
    class_permission_name = "Instrument"
    base_permissions = INSTRUMENT_PERMISSIONS
    list_columns = show_columns = readable_columns(InstrumentPrice)
    search_columns = ["instrument_id", "as_of", "source"]
    base_order = ("id", "desc")
