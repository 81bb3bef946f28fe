"""Forex API: currencies, rates, wallets (read-only balances; deposit and withdraw), exchanges
(quote, then execute) and the desk's reserves (Admin). Same row scoping as the screens: an
agent asking for another agent's client's wallet gets 404."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
    visible_through,
)
from app.forex import services, wallets
from app.forex.models import Currency, FxExchange, FxRate, Reserve, Wallet, WalletPosting
from app.forex.views import RESERVE_PERMISSIONS, RW_PERMISSIONS, WALLET_PERMISSIONS
from app.security.roles import API_METHOD_ACTIONS, REPAY


class _ActionApi(ServiceModelRestApi):
    allow_browser_login = True


class CurrencyApi(_ActionApi):
    resource_name = "currency"
    datamodel = CrmSQLAInterface(Currency)
    class_permission_name = "Currency"
    base_permissions = RW_PERMISSIONS
    prepare = staticmethod(wallets.prepare_currency)
    include_route_methods = {"get", "get_list", "info", "post", "put"}
    list_columns = show_columns = ["id", "code", "name", "minor_units", "active"]
    add_columns = ["code", "name", "active"]
    edit_columns = ["name", "active"]


class FxRateApi(_ActionApi):
    resource_name = "fxrate"
    datamodel = CrmSQLAInterface(FxRate)
    class_permission_name = "Currency"
    base_permissions = RW_PERMISSIONS
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "base", "quote", "rate", "as_of", "source"]
    base_order = ("as_of", "desc")


def _wallet_json(wallet: Wallet) -> dict:
    return {
        "id": wallet.id,
        "client_id": wallet.client_id,
        "currency": wallet.currency,
        "balance": str(wallet.balance),
    }


class WalletApi(_ActionApi):
    """Balances are read-only: they change only by deposit, withdrawal and exchange."""

    resource_name = "wallet"
    datamodel = CrmSQLAInterface(Wallet)
    class_permission_name = "Wallet"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "deposit": REPAY,
        "withdraw": REPAY,
        "payment_link": REPAY,
    }
    base_permissions = WALLET_PERMISSIONS
    include_route_methods = {"get", "get_list", "info", "deposit", "withdraw", "payment_link"}
    list_columns = show_columns = ["id", "client_id", "currency", "balance", "created_at"]
    search_columns = ["client_id", "currency"]

    @expose("/<int:pk>/deposit", methods=["POST"])
    @protect()
    @safe
    def deposit(self, pk: int):
        """Money the client hands in (``{"amount": "500.00", "memo": "..."}``).
        ---
        post:
          responses:
            200: {description: the wallet and its new balance}
            404: {$ref: '#/components/responses/404'}
            422: {description: a bad amount}
        """
        return self.run_workflow(lambda: wallets.deposit(pk, json_body()), _wallet_json)

    @expose("/<int:pk>/payment-link", methods=["POST"])
    @protect()
    @safe
    def payment_link(self, pk: int):
        """A payment link for a top-up of the wallet (``{"amount": "250.00"}``) (docs/payments.md).
        ---
        post:
          responses:
            201: {description: the link (url, amount, currency, status)}
            404: {$ref: '#/components/responses/404'}
            409: {description: nothing is due}
            503: {description: the payment provider did not answer}
        """
        from app.payments import services as payments

        return self.run_workflow(
            lambda: payments.link_for_wallet_top_up(pk, json_body().get("amount")),
            payments.intent_json,
            201,
        )

    @expose("/<int:pk>/withdraw", methods=["POST"])
    @protect()
    @safe
    def withdraw(self, pk: int):
        """Money paid out to the client (``{"amount": "100.00"}``); never beyond the balance.
        ---
        post:
          responses:
            200: {description: the wallet and its new balance}
            404: {$ref: '#/components/responses/404'}
            422: {description: a bad amount, or more than the wallet holds}
        """
        return self.run_workflow(lambda: wallets.withdraw(pk, json_body()), _wallet_json)


def _exchange_json(exchange: FxExchange) -> dict:
    return {
        "id": exchange.id,
        "reference": exchange.reference,
        "client_id": exchange.client_id,
        "sell_currency": exchange.sell_currency,
        "buy_currency": exchange.buy_currency,
        "sell_amount": str(exchange.sell_amount),
        "buy_amount": str(exchange.buy_amount),
        "mid_rate": str(exchange.mid_rate),
        "spread_bps": exchange.spread_bps,
        "client_rate": str(exchange.client_rate),
        "status": exchange.state,
        "quote_expires_at": exchange.quote_expires_at.isoformat(),
        "executed_at": exchange.executed_at.isoformat() if exchange.executed_at else None,
        "points_earned": exchange.points_earned,
        "journal_entry_id": exchange.journal_entry_id,
    }


class FxExchangeApi(_ActionApi):
    resource_name = "fxexchange"
    datamodel = CrmSQLAInterface(FxExchange)
    class_permission_name = "FxExchange"
    base_permissions = RW_PERMISSIONS
    method_permission_name = {**API_METHOD_ACTIONS, "quote": "write", "execute": "write"}
    include_route_methods = {"get", "get_list", "info", "quote", "execute"}
    list_columns = show_columns = [
        "id",
        "client_id",
        "sell_currency",
        "buy_currency",
        "sell_amount",
        "buy_amount",
        "mid_rate",
        "spread_bps",
        "client_rate",
        "status",
        "quote_expires_at",
        "executed_at",
        "points_earned",
        "journal_entry_id",
    ]
    search_columns = ["client_id", "status", "sell_currency", "buy_currency"]
    base_order = ("id", "desc")

    @expose("/quote", methods=["POST"])
    @protect()
    @safe
    def quote(self):
        """Price an exchange (``{"client_id": 1, "sell_currency": "USD", "buy_currency": "EUR",
        "sell_amount": "100.00"}``); valid for ``CRM_FX_QUOTE_SECONDS``.
        ---
        post:
          responses:
            201: {description: the quote (rate, spread, amount received, expiry)}
            404: {description: no such client}
            422: {description: a bad field, e.g. no rate for the pair}
        """
        return self.run_workflow(lambda: services.quote(json_body()), _exchange_json, 201)

    @expose("/<int:pk>/execute", methods=["POST"])
    @protect()
    @safe
    def execute(self, pk: int):
        """Carry out a quote: both wallets and both reserves change together.
        ---
        post:
          responses:
            200: {description: the executed exchange}
            404: {$ref: '#/components/responses/404'}
            409: {description: expired, already executed, or the reserve is short}
            422: {description: the wallet cannot cover the sale}
        """
        return self.run_workflow(lambda: services.execute(pk), _exchange_json)


class ReserveApi(_ActionApi):
    resource_name = "reserve"
    datamodel = CrmSQLAInterface(Reserve)
    class_permission_name = "FxReserve"
    method_permission_name = {**API_METHOD_ACTIONS, "topup": "write"}
    base_permissions = RESERVE_PERMISSIONS
    include_route_methods = {"get", "get_list", "info", "topup"}
    list_columns = show_columns = ["id", "currency", "balance", "updated_at"]

    @expose("/<string:code>/topup", methods=["POST"])
    @protect()
    @safe
    def topup(self, code: str):
        """Put the desk's money into a currency's reserve (``{"amount": "10000.00"}``).
        ---
        post:
          responses:
            200: {description: the reserve and its new balance}
            422: {description: a bad amount or an unknown currency}
        """
        return self.run_workflow(
            lambda: wallets.top_up_reserve(code, json_body()),
            lambda r: {"id": r.id, "currency": r.currency, "balance": str(r.balance)},
        )


class WalletPostingApi(ReadOnlyRestApi):
    """Each journal line that moved a wallet, with the signed amount: the wallet's history as
    the ledger has it. Only postings of wallets the caller can see."""

    resource_name = "walletposting"
    datamodel = CrmSQLAInterface(WalletPosting)
    class_permission_name = "Wallet"
    base_permissions = WALLET_PERMISSIONS
    base_filters = [["wallet_id", visible_through(Wallet), None]]
    list_columns = show_columns = readable_columns(WalletPosting)
    search_columns = ["wallet_id"]
