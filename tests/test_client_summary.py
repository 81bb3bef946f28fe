"""The compliance and brokerage dashboards read the client summaries: their numbers must be the
clients' and positions' own.

Random clients (with and without a segment or a manager) are created and given positions;
then clients are handed to another manager or branch, re-segmented, verified or rejected (also
in bulk), positions are bought up, sold to nothing, moved and deleted, and prices change. For
every role's row scope (all, a branch manager, an agent, a compliance officer) and each filter
(branch, agent), the KYC counts and, per segment, clients, holders and market value are
compared with the same numbers computed here from the rows. Also after compaction and rebuild.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from app.brokerage.models import Instrument, Position
from app.clients.models import KYC_STATUSES, SEGMENTS, Client
from app.dashboards.client_summary import (
    ClientSummary,
    PositionSummary,
    holdings_by_segment,
    kyc_status_counts,
)
from app.dashboards.summary import compact, rebuild
from app.extensions import db
from app.security.scoping import Actor, acting_as
from tests.support import login, make_branch, make_staff
from tests.test_brokerage import make_instrument

FIRST_DAY = date(2026, 7, 10)
CENT = Decimal("0.01")


@pytest.fixture(params=["app", "pg_app"])
def on_each_database(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def desk(on_each_database):
    home, other = make_branch(), make_branch()
    people = {
        "manager": make_staff("Manager", home),
        "agent": make_staff("Agent", home),
        "colleague": make_staff("Agent", home),
        "stranger": make_staff("Agent", other),
        "officer": make_staff("Compliance", home),
    }
    instruments = [
        make_instrument(f"SUM{n}", price=price) for n, price in enumerate(("101.35", "7.123457"))
    ]
    db.session.commit()
    return {"people": people, "instruments": instruments, "home": home.id}


def raw_numbers(branch, agent) -> tuple[dict, dict]:
    """KYC counts and per segment (clients, holders, value) from the rows the reader sees."""
    clients = [
        c
        for c in db.session.scalars(select(Client))
        if (branch is None or c.branch_id == branch)
        and (agent is None or c.relationship_manager_id == agent)
    ]
    kyc: dict[str, int] = {}
    per: dict[str, list] = {}
    held: dict[tuple[str, int], Decimal] = {}
    ids = {c.id: c for c in clients}
    for c in clients:
        kyc[c.kyc_status] = kyc.get(c.kyc_status, 0) + 1
        per.setdefault(c.segment or "", [0, 0, Decimal("0.00")])[0] += 1
    prices = {i.id: i.last_price for i in db.session.scalars(select(Instrument))}
    holders = set()
    for p in db.session.scalars(select(Position)):
        c = ids.get(p.client_id)
        if c is None or p.quantity <= 0:
            continue
        holders.add(p.client_id)
        key = (c.segment or "", p.instrument_id)
        held[key] = held.get(key, Decimal("0")) + p.quantity
    for client_id in holders:
        per[ids[client_id].segment or ""][1] += 1
    for (segment, instrument), quantity in held.items():
        if prices[instrument] is not None:
            per[segment][2] += (quantity * prices[instrument]).quantize(CENT, ROUND_HALF_UP)
    return kyc, {s: tuple(v) for s, v in per.items()}


def summary_numbers(branch, agent) -> tuple[dict, dict]:
    found = holdings_by_segment(branch, agent)
    per = {
        s: (found.clients.get(s, 0), found.holders.get(s, 0), found.value.get(s, Decimal("0.00")))
        for s in found.clients
    }
    return kyc_status_counts(branch, agent), per


PEOPLE = ("agent", "colleague", "stranger")
new_client = st.tuples(
    st.sampled_from([*PEOPLE, None]),
    st.sampled_from([*SEGMENTS, None]),
    st.sampled_from(KYC_STATUSES),
    st.integers(0, 90),
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5000)), max_size=3),  # positions
)
change = st.tuples(
    st.sampled_from(
        ["manager", "segment", "kyc", "bulk-kyc", "quantity", "move", "delete", "buy", "price"]
    ),
    st.integers(0, 40),
    st.integers(0, 3000),
    st.sampled_from([*PEOPLE, *SEGMENTS, *KYC_STATUSES, None]),
)


def _apply(desk, clients, changes) -> None:
    people, instruments = desk["people"], desk["instruments"]
    made = []
    for who, segment, kyc, day, holdings in clients:
        owner = people[who] if who else people["agent"]
        client = Client(
            name=f"Summary client {len(made)}",
            branch_id=owner.branch_id,
            relationship_manager_id=owner.user_id if who else None,
            segment=segment,
            kyc_status=kyc,
            created_at=datetime.combine(FIRST_DAY + timedelta(days=day), time(22), UTC),
        )
        db.session.add(client)
        db.session.flush()
        for which, hundredths in dict(holdings).items():  # one position per instrument
            db.session.add(
                Position(
                    client_id=client.id,
                    instrument_id=instruments[which].id,
                    quantity=Decimal(hundredths) / 100,
                )
            )
        made.append(client)
    db.session.commit()
    for kind, which, number, choice in changes:
        positions = list(db.session.scalars(select(Position).order_by(Position.id)))
        taken = {(p.client_id, p.instrument_id) for p in positions}
        if kind == "price":
            instruments[which % 2].last_price = Decimal(number + 1) / 7
        elif kind in ("quantity", "move", "delete") and positions:
            position = positions[which % len(positions)]
            if kind == "quantity":
                position.quantity = Decimal(number % 4) / 3  # zero a third of the time
            elif kind == "move" and made:
                target = made[number % len(made)].id
                if (target, position.instrument_id) not in taken:
                    position.client_id = target
            elif kind == "delete":
                db.session.delete(position)
        elif made:
            client = made[which % len(made)]
            if kind == "manager" and choice in PEOPLE:
                client.relationship_manager_id = people[choice].user_id
                client.branch_id = people[choice].branch_id
            elif kind == "segment" and (choice in SEGMENTS or choice is None):
                client.segment = choice
            elif kind == "kyc" and choice in KYC_STATUSES:
                client.kyc_status = choice
            elif kind == "bulk-kyc" and choice in KYC_STATUSES:
                db.session.execute(
                    update(Client)
                    .where(Client.segment == client.segment)
                    .values(kyc_status=choice),
                    execution_options={"synchronize_session": False},
                )
            elif kind == "buy" and (client.id, instruments[number % 2].id) not in taken:
                db.session.add(
                    Position(
                        client_id=client.id,
                        instrument_id=instruments[number % 2].id,
                        quantity=Decimal(number) / 1000,
                    )
                )
        db.session.commit()
        db.session.expire_all()


def _check_every_scope(desk) -> None:
    people, home = desk["people"], desk["home"]
    readers = {
        "admin": None,
        "manager": Actor(people["manager"].user_id, frozenset({"Manager"}), home),
        "agent": Actor(people["agent"].user_id, frozenset({"Agent"}), home),
        "compliance": Actor(people["officer"].user_id, frozenset({"Compliance"}), home),
    }
    for branch in (None, home, people["stranger"].branch_id):
        for agent in (None, people["agent"].user_id, people["stranger"].user_id):
            for name, actor in readers.items():
                if actor is None:
                    expected, found = raw_numbers(branch, agent), summary_numbers(branch, agent)
                else:
                    with acting_as(actor):
                        expected = raw_numbers(branch, agent)
                        found = summary_numbers(branch, agent)
                assert found == expected, (name, branch, agent)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    clients=st.lists(new_client, min_size=1, max_size=8),
    changes=st.lists(change, min_size=2, max_size=14),
)
def test_every_client_and_holding_number_from_the_summaries_is_the_rows_own(desk, clients, changes):
    # The clients of earlier examples stay: both sides count every row the reader sees.
    _apply(desk, clients, changes)
    _check_every_scope(desk)
    compact(db.session)
    db.session.commit()
    for model in (ClientSummary, PositionSummary):
        pending = db.session.scalar(
            select(func.count()).select_from(model).where(model.compacted.is_(False))
        )
        assert pending == 0
    _check_every_scope(desk)
    rebuild(db.session)
    db.session.commit()
    _check_every_scope(desk)


def test_selling_the_last_holding_makes_a_client_no_longer_a_holder(on_each_database, desk):
    agent = desk["people"]["agent"]
    client = Client(
        name="Last holding", branch_id=agent.branch_id, relationship_manager_id=agent.user_id
    )
    db.session.add(client)
    db.session.flush()
    position = Position(
        client_id=client.id, instrument_id=desk["instruments"][0].id, quantity=Decimal("10")
    )
    db.session.add(position)
    db.session.commit()
    assert holdings_by_segment(None, agent.user_id).holders == {"": 1}
    assert holdings_by_segment(None, agent.user_id).value == {"": Decimal("1013.50")}
    db.session.delete(position)
    db.session.commit()
    assert holdings_by_segment(None, agent.user_id).holders == {}
    assert holdings_by_segment(None, agent.user_id).clients == {"": 1}


def test_the_compliance_and_brokerage_dashboards_count_a_new_client_at_once(on_each_database, desk):
    from tests.test_dashboards import open_dashboard, record_count

    manager = desk["people"]["manager"]
    client = on_each_database.test_client()
    assert login(client, manager.user.username).status_code == 302
    before = open_dashboard(client, "compliance")["kyc-status"]["Verified"][0]
    for who in ("agent", "stranger"):
        person = desk["people"][who]
        db.session.add(
            Client(
                name=f"New {who}",
                branch_id=person.branch_id,
                relationship_manager_id=person.user_id,
                kyc_status="verified",
                segment="hni",
            )
        )
    db.session.commit()
    count, _, url = open_dashboard(client, "compliance")["kyc-status"]["Verified"]
    assert (before, count) == (0, 1)
    assert record_count(client, url) == 1
    assert open_dashboard(client, "brokerage")["portfolio-by-segment"]["HNI"][0] == 1
