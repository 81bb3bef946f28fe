"""Factories for the forex desk's and loyalty's tests: currencies, rates, clients with wallets,
reserves."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.clients.models import Client
from app.extensions import db
from app.forex import wallets
from app.forex.models import Currency, FxRate, Wallet
from app.org.models import StaffProfile

NAMES = {"INR": "Indian rupee", "USD": "US dollar", "EUR": "Euro", "GBP": "Pound sterling"}


def make_currencies(*codes: str) -> list[Currency]:
    return [wallets.add_currency(code, NAMES.get(code, code)) for code in codes or NAMES]


def make_rate(base: str, quote: str, rate: str, as_of: datetime | None = None) -> FxRate:
    row = FxRate(
        base=base,
        quote=quote,
        rate=Decimal(rate),
        as_of=as_of or datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        source="test",
    )
    db.session.add(row)
    db.session.flush()
    return row


def make_fx_client(agent: StaffProfile, name: str = "Meera Nair") -> Client:
    client = Client(name=name, branch_id=agent.branch_id, relationship_manager_id=agent.user_id)
    db.session.add(client)
    db.session.flush()
    return client


def fund(client: Client, currency: str, amount: str) -> Wallet:
    wallet = wallets.wallet_for(client.id, currency)
    db.session.flush()
    return wallets.deposit(wallet.id, {"amount": amount})


def top_up(currency: str, amount: str):
    return wallets.top_up_reserve(currency, {"amount": amount})


def desk(agent: StaffProfile) -> Client:
    """INR, USD and EUR; USD->EUR 0.92 and USD->INR 83.00; reserves of 10,000 EUR and USD and
    1,000,000 INR; a client of ``agent`` with 1,000.00 USD."""
    make_currencies("INR", "USD", "EUR")
    make_rate("USD", "EUR", "0.92")
    make_rate("USD", "INR", "83.00")
    top_up("EUR", "10000.00")
    top_up("USD", "10000.00")
    top_up("INR", "1000000.00")
    client = make_fx_client(agent)
    fund(client, "USD", "1000.00")
    db.session.commit()
    return client
