"""Factories for the billing desk's tests (call inside an app context; tests commit)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.billing import services
from app.billing.models import BillingProduct, Invoice
from app.clients.models import Client
from app.extensions import db
from tests.support import make_branch, make_staff

TODAY = date(2026, 3, 2)


def make_client(agent=None, name: str = "Asha Verma") -> Client:
    agent = agent or make_staff("Agent", make_branch(tz="UTC"))
    client = Client(name=name, branch_id=agent.branch_id, relationship_manager_id=agent.user_id)
    db.session.add(client)
    db.session.flush()
    return client


def make_product(sku: str = "CONS-1", price: str = "1000.00", rate: str = "18", **fields):
    product = BillingProduct(
        name=fields.pop("name", "Consulting hour"),
        sku=sku,
        unit_price=Decimal(price),
        tax_rate=Decimal(rate),
        kind=fields.pop("kind", "service"),
        **fields,
    )
    services.prepare_product(product)
    db.session.add(product)
    db.session.flush()
    return product


def two_lines() -> list[dict]:
    # 3 x 333.33 = 999.99, tax 18% = 179.9982 -> 180.00; 1.5 x 10.05 = 15.075 -> 15.08,
    # tax 5% = 0.754 -> 0.75. Subtotal 1,015.07, tax 180.75, total 1,195.82.
    return [
        {
            "description": "Advisory retainer",
            "quantity": "3",
            "unit_price": "333.33",
            "tax_rate": "18",
        },
        {"description": "Courier", "quantity": "1.5", "unit_price": "10.05", "tax_rate": "5"},
    ]


def make_invoice(client: Client, lines=None, due: date | None = None) -> Invoice:
    return services.create_invoice(
        {
            "client_id": client.id,
            "due_date": due or date(2026, 4, 1),
            "lines": lines or two_lines(),
        },
        today=TODAY,
    )


def issued_invoice(client: Client, lines=None, due: date | None = None) -> Invoice:
    invoice = make_invoice(client, lines, due)
    services.issue_invoice(invoice.id, today=TODAY)
    db.session.commit()
    return invoice
