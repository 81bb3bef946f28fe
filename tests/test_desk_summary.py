"""The billing and forex dashboards read the invoice and exchange summaries: their numbers must
be the invoices' and exchanges' own.

Random invoices (draft, open, paid, void; due on random days) and exchanges (quoted or executed
on random days, in several pairs) are written; then invoices are part paid, paid, voided,
re-dated (also in bulk, as the overdue job does), exchanges executed, and clients handed to
another manager or branch. For every role's row scope and each filter, the ageing buckets and
the volume by pair are compared with the same numbers computed here from the rows, before and
after compaction and rebuild.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from app.billing.models import INVOICE_STATUSES, OPEN_INVOICE_STATUSES, Invoice
from app.clients.models import Client
from app.dashboards.base import money, today
from app.dashboards.desk_summary import exchanges_by_pair, open_invoices_by_due_range
from app.dashboards.summary import compact, rebuild
from app.extensions import db
from app.forex.models import FxExchange
from app.security.scoping import Actor, acting_as
from tests.forex_support import make_currencies
from tests.support import login, make_branch, make_staff

FIRST_DAY = date(2026, 8, 25)
NUMBERS = itertools.count(1)
CENT = Decimal("0.01")
"""Money is written in whole cents, as the forms do."""
RANGES = {
    "early": (None, FIRST_DAY + timedelta(days=20)),
    "middle": (FIRST_DAY + timedelta(days=21), FIRST_DAY + timedelta(days=50)),
    "late": (FIRST_DAY + timedelta(days=51), None),
    "all": (None, None),
}
PAIRS = (("USD", "INR"), ("EUR", "INR"), ("INR", "USD"))


@pytest.fixture(params=["app", "pg_app"])
def on_each_database(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def desk(on_each_database):
    make_currencies("INR", "USD", "EUR")
    home, other = make_branch(), make_branch()
    people = {
        "manager": make_staff("Manager", home),
        "agent": make_staff("Agent", home),
        "colleague": make_staff("Agent", home),
        "stranger": make_staff("Agent", other),
    }
    clients = []
    for who in ("agent", "colleague", "stranger", "agent"):
        person = people[who]
        client = Client(
            name=f"Desk {who} {len(clients)}",
            branch_id=person.branch_id,
            relationship_manager_id=person.user_id,
        )
        db.session.add(client)
        clients.append(client)
    db.session.commit()
    return {"people": people, "clients": clients, "home": home.id}


def _ours(client: Client, branch, agent) -> bool:
    return (branch is None or client.branch_id == branch) and (
        agent is None or client.relationship_manager_id == agent
    )


def raw_numbers(date_from, date_to, branch, agent):
    clients = {c.id: c for c in db.session.scalars(select(Client)) if _ours(c, branch, agent)}
    ageing: dict[str, tuple[int, Decimal]] = {}
    for invoice in db.session.scalars(select(Invoice)):
        if invoice.client_id not in clients or invoice.status not in OPEN_INVOICE_STATUSES:
            continue
        for name, (first, last) in RANGES.items():
            if (first is None or invoice.due_date >= first) and (
                last is None or invoice.due_date <= last
            ):
                n, due = ageing.get(name, (0, Decimal("0.00")))
                ageing[name] = (n + 1, due + money(invoice.total - invoice.amount_paid))
    pairs: dict[tuple[str, str], list] = {}
    for x in db.session.scalars(select(FxExchange)):
        if x.client_id not in clients or x.status != "executed":
            continue
        day = x.executed_at.astimezone(UTC).date()
        if (date_from and day < date_from) or (date_to and day > date_to):
            continue
        found = pairs.setdefault((x.sell_currency, x.buy_currency), [0, Decimal("0"), Decimal("0")])
        found[0] += 1
        found[1] += money(x.sell_amount)
        found[2] += money(x.buy_amount)
    return ageing, {pair: tuple(v) for pair, v in pairs.items()}


def summary_numbers(date_from, date_to, branch, agent):
    pairs = {
        (sell, buy): (n, sold, bought)
        for sell, buy, n, sold, bought in exchanges_by_pair(date_from, date_to, branch, agent)
    }
    return open_invoices_by_due_range(RANGES, branch, agent), pairs


new_invoice = st.tuples(
    st.integers(0, 3),  # client
    st.sampled_from(INVOICE_STATUSES),
    st.integers(0, 80),  # due day
    st.integers(1, 900_000),  # total in cents
)
new_exchange = st.tuples(
    st.integers(0, 3),
    st.sampled_from(PAIRS),
    st.booleans(),
    st.integers(0, 80),
    st.integers(1, 10**7),
)
change = st.tuples(
    st.sampled_from(["pay", "void", "redate", "bulk-overdue", "execute", "hand-over"]),
    st.integers(0, 30),
    st.integers(0, 80),
)


def _apply(desk, invoices, exchanges, changes) -> None:
    clients, people = desk["clients"], desk["people"]
    for which, status, due, total in invoices:
        amount = Decimal(total) / 100
        db.session.add(
            Invoice(
                client_id=clients[which].id,
                number=f"INV-S{next(NUMBERS)}",
                due_date=FIRST_DAY + timedelta(days=due),
                status=status,
                subtotal=amount,
                total=amount,
                amount_paid=amount
                if status == "paid"
                else (amount / 4).quantize(CENT)
                if status == "partially_paid"
                else 0,
            )
        )
        db.session.flush()
    for which, (sell, buy), executed, day, amount in exchanges:
        at = datetime.combine(FIRST_DAY + timedelta(days=day), time(23, 15), UTC)
        db.session.add(
            FxExchange(
                client_id=clients[which].id,
                sell_currency=sell,
                buy_currency=buy,
                sell_amount=Decimal(amount) / 100,
                buy_amount=Decimal(amount) / 100 * 83,
                mid_rate=Decimal("83"),
                spread_bps=50,
                client_rate=Decimal("82.5"),
                status="executed" if executed else "quoted",
                quote_expires_at=at,
                executed_at=at if executed else None,
            )
        )
    db.session.commit()
    for kind, which, day in changes:
        invoices_now = list(db.session.scalars(select(Invoice).order_by(Invoice.id)))
        exchanges_now = list(db.session.scalars(select(FxExchange).order_by(FxExchange.id)))
        if kind == "pay" and invoices_now:
            invoice = invoices_now[which % len(invoices_now)]
            if invoice.status in OPEN_INVOICE_STATUSES:
                invoice.amount_paid = (
                    invoice.total if day % 2 else (invoice.total / 2).quantize(CENT)
                )
                invoice.status = "paid" if day % 2 else "partially_paid"
        elif kind == "void" and invoices_now:
            invoices_now[which % len(invoices_now)].status = "void"
        elif kind == "redate" and invoices_now:
            invoices_now[which % len(invoices_now)].due_date = FIRST_DAY + timedelta(days=day)
        elif kind == "bulk-overdue":
            db.session.execute(
                update(Invoice)
                .where(
                    Invoice.status == "issued", Invoice.due_date < FIRST_DAY + timedelta(days=day)
                )
                .values(status="overdue"),
                execution_options={"synchronize_session": False},
            )
        elif kind == "execute" and exchanges_now:
            x = exchanges_now[which % len(exchanges_now)]
            if x.status == "quoted":
                x.status = "executed"
                x.executed_at = datetime.combine(FIRST_DAY + timedelta(days=day), time(1), UTC)
        elif kind == "hand-over":
            client = clients[which % len(clients)]
            person = people[("agent", "colleague", "stranger")[day % 3]]
            client.branch_id, client.relationship_manager_id = person.branch_id, person.user_id
        db.session.commit()
        db.session.expire_all()


def _check_every_scope(desk, periods) -> None:
    people, home = desk["people"], desk["home"]
    readers = {
        "admin": None,
        "manager": Actor(people["manager"].user_id, frozenset({"Manager"}), home),
        "agent": Actor(people["agent"].user_id, frozenset({"Agent"}), home),
    }
    for start, end in periods:
        date_from = FIRST_DAY + timedelta(days=start) if start is not None else None
        date_to = FIRST_DAY + timedelta(days=end) if end is not None else None
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from
        for branch in (None, home, people["stranger"].branch_id):
            for agent in (None, people["agent"].user_id):
                args = (date_from, date_to, branch, agent)
                for name, actor in readers.items():
                    if actor is None:
                        expected, found = raw_numbers(*args), summary_numbers(*args)
                    else:
                        with acting_as(actor):
                            expected, found = raw_numbers(*args), summary_numbers(*args)
                    assert found == expected, (name, args)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    invoices=st.lists(new_invoice, max_size=8),
    exchanges=st.lists(new_exchange, max_size=8),
    changes=st.lists(change, min_size=1, max_size=12),
    periods=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-5, 90)), st.one_of(st.none(), st.integers(-5, 90))
        ),
        min_size=1,
        max_size=2,
    ),
)
def test_every_billing_and_forex_number_from_the_summaries_is_the_rows_own(
    desk, invoices, exchanges, changes, periods
):
    _apply(desk, invoices, exchanges, changes)
    _check_every_scope(desk, periods)
    compact(db.session)
    db.session.commit()
    _check_every_scope(desk, periods)
    rebuild(db.session)
    db.session.commit()
    _check_every_scope(desk, periods)


def test_a_paid_invoice_leaves_the_billing_dashboard_at_once(on_each_database, desk):
    from tests.test_dashboards import open_dashboard

    manager = desk["people"]["manager"]
    invoice = Invoice(
        client_id=desk["clients"][0].id,
        number="INV-SUM-1",
        due_date=today() + timedelta(days=10),
        status="issued",
        subtotal=Decimal("1200.00"),
        total=Decimal("1200.00"),
        amount_paid=Decimal("0.00"),
    )
    db.session.add(invoice)
    db.session.commit()
    client = on_each_database.test_client()
    assert login(client, manager.user.username).status_code == 302
    assert open_dashboard(client, "billing")["invoice-ageing"]["not due"][0] == 1
    invoice.amount_paid, invoice.status = invoice.total, "paid"
    db.session.commit()
    assert open_dashboard(client, "billing")["invoice-ageing"]["not due"][0] == 0
