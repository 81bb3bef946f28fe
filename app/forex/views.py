"""Forex screens: currencies, rates, wallets (deposit and withdraw), the Exchange page (quote,
then execute), the list of exchanges, and the desk's reserves (Admin). Balances are shown,
never edited: they change only through the services in ``app.forex.wallets``."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from sqlalchemy import select
from wtforms import BooleanField

from app.clients.models import Client
from app.core.crud import CrmSQLAInterface, ServiceModelView, run_action
from app.core.forms import display_money, display_timestamp
from app.core.once import once_per_form
from app.extensions import db
from app.forex import services, wallets
from app.forex.models import Currency, FxExchange, FxRate, Reserve, Wallet
from app.forex.rates import current_rate
from app.ledger.services import entries_for
from app.security.roles import REPAY, VIEW_METHOD_ACTIONS
from app.security.scoping import UNSCOPED

RW_PERMISSIONS = ["can_read", "can_write"]
WALLET_PERMISSIONS = ["can_read", "can_write", "can_repay"]
"""Shared by every screen and API of the Wallet resource (FAB needs them identical)."""
RESERVE_PERMISSIONS = ["can_read", "can_write"]
ACTIVE_FIELD = {"active": BooleanField("Active", default=True)}
"""An unticked box means inactive (FAB would make a non-null flag a required tick)."""


class CurrencyView(ServiceModelView):
    datamodel = CrmSQLAInterface(Currency)
    class_permission_name = "Currency"
    base_permissions = RW_PERMISSIONS
    prepare = staticmethod(wallets.prepare_currency)
    list_title = "Currencies"
    list_columns = ["code", "name", "minor_units", "active"]
    show_columns = list_columns
    add_columns = ["code", "name", "active"]
    edit_columns = ["name", "active"]
    add_form_extra_fields = edit_form_extra_fields = ACTIVE_FIELD

    def post_add(self, item: Currency) -> None:
        wallets.reserve_for(item.code)
        db.session.commit()


def prepare_rate(rate: FxRate) -> FxRate:
    from decimal import Decimal

    from app.core.errors import FieldError
    from app.core.types import utcnow
    from app.core.validators import parse_decimal

    rate.base = (rate.base or "").upper()
    rate.quote = (rate.quote or "").upper()
    wallets.active_currency(rate.base, "base")
    wallets.active_currency(rate.quote, "quote")
    if rate.base == rate.quote:
        raise FieldError("must differ from the base currency.", "quote")
    rate.rate = parse_decimal(rate.rate, "rate", Decimal("0"), Decimal("9999999999"))
    if rate.rate.quantize(Decimal("0.00000001")) <= 0:
        raise FieldError("must be more than 0 (at most 8 decimal places).", "rate")
    rate.as_of = rate.as_of or utcnow()
    rate.source = "manual"
    return rate


class FxRateView(ServiceModelView):
    datamodel = CrmSQLAInterface(FxRate)
    class_permission_name = "Currency"
    base_permissions = RW_PERMISSIONS
    prepare = staticmethod(prepare_rate)
    list_title = "FX rates"
    list_columns = ["base", "quote", "rate", "as_of", "source"]
    show_columns = list_columns
    add_columns = ["base", "quote", "rate", "as_of"]
    search_columns = ["base", "quote", "source"]
    base_order = ("as_of", "desc")
    label_columns = {"as_of": "As of (UTC)"}
    formatters_columns = {"as_of": display_timestamp}
    description_columns = {"rate": "How many of the quote currency one unit of the base buys."}

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(404)  # a rate is history: a new rate is added instead


class WalletView(ServiceModelView):
    """Wallets open empty; money moves in and out with the deposit and withdraw forms."""

    datamodel = CrmSQLAInterface(Wallet)
    class_permission_name = "Wallet"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "deposit": REPAY,
        "withdraw": REPAY,
        "payment_link": REPAY,
    }
    base_permissions = WALLET_PERMISSIONS
    show_template = "crm/wallet_show.html"
    list_title = "Wallets"
    list_columns = ["client", "currency", "balance", "created_at"]
    show_columns = ["client", "currency", "balance", "created_at"]
    add_columns = ["client", "currency"]
    search_columns = ["client", "currency"]
    formatters_columns = {"balance": display_money, "created_at": display_timestamp}
    label_columns = {"created_at": "Opened (UTC)"}

    prepare = staticmethod(wallets.prepare_wallet)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(404)  # nothing of a wallet is edited; its balance moves only by postings

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        wallet = db.session.get(Wallet, int(pk)) if str(pk).isdigit() else None
        if wallet is None:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "wallet": wallet,
            "ledger_balance": wallets.ledger_balance(wallet),
            "entries": entries_for(wallet),
            "may_repay": self.appbuilder.sm.has_access("can_repay", "Wallet"),
        }
        return super().show(pk)

    def _move(self, pk: int, move: Callable[[int, dict], Wallet], verb: str):
        wallet, refusal = run_action(
            lambda: once_per_form(f"wallet {verb.lower()}", lambda: move(pk, request.form)),
            "wallet",
        )
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(f"{verb}: the {wallet.currency} wallet holds {wallet.balance:,.2f}.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/deposit/<int:pk>", methods=["POST"])
    @has_access
    def deposit(self, pk: int):
        return self._move(pk, wallets.deposit, "Deposited")

    @expose("/withdraw/<int:pk>", methods=["POST"])
    @has_access
    def withdraw(self, pk: int):
        return self._move(pk, wallets.withdraw, "Withdrawn")

    @expose("/payment-link/<int:pk>", methods=["POST"])
    @has_access
    def payment_link(self, pk: int):
        """A link the client tops the wallet up with, by the amount typed (docs/payments.md)."""
        from app.payments.services import link_for_wallet_top_up

        link, refusal = run_action(
            lambda: link_for_wallet_top_up(pk, request.form.get("amount")), "payment_intent"
        )
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(f"Payment link for {link.amount:,.2f} {link.currency}: {link.url}", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))


class FxExchangeView(ServiceModelView):
    datamodel = CrmSQLAInterface(FxExchange)
    class_permission_name = "FxExchange"
    base_permissions = RW_PERMISSIONS
    list_title = "Exchanges"
    list_columns = [
        "reference",
        "client",
        "sell_amount",
        "sell_currency",
        "buy_amount",
        "buy_currency",
        "client_rate",
        "state",
        "created_at",
    ]
    show_columns = [
        "reference",
        "client",
        "sell_currency",
        "sell_amount",
        "buy_currency",
        "buy_amount",
        "mid_rate",
        "spread_bps",
        "client_rate",
        "state",
        "quote_expires_at",
        "executed_at",
        "points_earned",
        "journal_entry_id",
        "created_by",
        "created_at",
    ]
    search_columns = ["client", "status", "sell_currency", "buy_currency"]
    base_order = ("id", "desc")
    label_columns = {
        "spread_bps": "Spread (basis points)",
        "client_rate": "Rate given",
        "mid_rate": "Mid rate",
        "state": "Status",
        "journal_entry_id": "Journal entry",
    }
    formatters_columns = {
        "sell_amount": display_money,
        "buy_amount": display_money,
        "created_at": display_timestamp,
        "executed_at": display_timestamp,
        "quote_expires_at": display_timestamp,
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return redirect(url_for("ExchangeView.page"))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(404)  # an exchange is never edited


class ExchangeView(BaseView):
    """The Exchange page: choose the client, the currencies and the amount, get a quote (rate,
    spread, amount received, expiry), then execute it."""

    route_base = "/exchange"
    class_permission_name = "FxExchange"
    method_permission_name = {"page": "read", "get_quote": "write", "execute": "write"}
    base_permissions = RW_PERMISSIONS
    default_view = "page"

    def _render(self, quote: FxExchange | None = None, form: dict | None = None, error=None):
        clients = db.session.scalars(select(Client).order_by(Client.name).limit(500)).all()
        currencies = db.session.scalars(
            select(Currency).where(Currency.active.is_(True)).order_by(Currency.code),
            execution_options=UNSCOPED,
        ).all()
        balances = {}
        if quote is not None:
            for code in (quote.sell_currency, quote.buy_currency):
                w = wallets.wallet_for(quote.client_id, code, create=False)
                balances[code] = w.balance if w else wallets.ZERO
        return self.render_template(
            "crm/fx_exchange.html",
            title="Exchange",
            clients=clients,
            currencies=currencies,
            form=form or {},
            quote=quote,
            balances=balances,
            error=error,
        )

    @expose("/", methods=["GET"])
    @has_access
    def page(self):
        form = {"client_id": request.args.get("client_id", "")}
        exchange_id = request.args.get("exchange_id", "")
        quote = db.session.get(FxExchange, int(exchange_id)) if exchange_id.isdigit() else None
        return self._render(quote, form)

    @expose("/quote", methods=["POST"])
    @has_access
    def get_quote(self):
        form = {
            k: request.form.get(k, "")
            for k in ("client_id", "sell_currency", "buy_currency", "sell_amount")
        }
        quote, refusal = run_action(lambda: services.quote(form), "fx_exchange")
        if refusal:
            return self._render(None, form, refusal), 422
        return self._render(quote, form)

    @expose("/execute/<int:pk>", methods=["POST"])
    @has_access
    def execute(self, pk: int):
        exchange, refusal = run_action(lambda: services.execute(pk), "fx_exchange")
        if refusal:
            flash(f"Not executed: {refusal}", "danger")
            return redirect(url_for("ExchangeView.page", exchange_id=pk))
        flash(
            f"{exchange.reference} executed: {exchange.sell_amount:,.2f} {exchange.sell_currency} "
            f"sold for {exchange.buy_amount:,.2f} {exchange.buy_currency}; "
            f"{exchange.points_earned} loyalty point(s) earned.",
            "success",
        )
        return redirect(url_for("ExchangeView.page", exchange_id=pk))


class ReserveView(BaseView):
    """The desk's reserve in each currency (Admin), beside its ledger account, with a top-up
    form that posts Dr cash / Cr forex reserve."""

    route_base = "/reserves"
    class_permission_name = "FxReserve"
    method_permission_name = {"page": "read", "topup": "write"}
    base_permissions = RESERVE_PERMISSIONS
    default_view = "page"

    @expose("/", methods=["GET"])
    @has_access
    def page(self):
        currencies = db.session.scalars(
            select(Currency).order_by(Currency.code), execution_options=UNSCOPED
        ).all()
        reserves = {
            r.currency: r for r in db.session.scalars(select(Reserve), execution_options=UNSCOPED)
        }
        base = wallets.base_currency()
        rows = [
            {
                "code": c.code,
                "name": c.name,
                "balance": reserves[c.code].balance if c.code in reserves else wallets.ZERO,
                "ledger": wallets.reserve_ledger_balance(c.code),
                "rate_to_base": current_rate(c.code, base),
            }
            for c in currencies
        ]
        return self.render_template(
            "crm/fx_reserves.html",
            title="Reserves",
            rows=rows,
            base=base,
            may_write=self.appbuilder.sm.has_access("can_write", "FxReserve"),
        )

    @expose("/topup", methods=["POST"])
    @has_access
    def topup(self):
        code = request.form.get("currency", "")
        reserve, refusal = run_action(
            lambda: wallets.top_up_reserve(code, request.form), "fx_reserve"
        )
        if refusal:
            flash(f"Not topped up: {refusal}", "danger")
        else:
            flash(f"The {reserve.currency} reserve holds {reserve.balance:,.2f}.", "success")
        return redirect(url_for("ReserveView.page"))
