"""Dashboards: each filtered chart's numbers are the counts of the lists its bars open, under the
viewer's row scoping; bad filters answer 4xx with a message; the SQL does not grow with the data.

The desks' records are written directly (known dates, statuses and amounts) so each expected
number can be stated; "today" is the real UTC day, as the dashboards use it.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, insert, select

from app.billing.models import Invoice
from app.brokerage.models import Instrument, Position
from app.clients.models import Client
from app.core.types import utcnow
from app.documents.models import Document
from app.extensions import db
from app.forex.models import Currency, FxExchange
from app.kyc.models import KycCase
from app.leads.models import Lead
from app.lending.models import LoanInstalment
from app.org.models import StaffProfile
from tests.lending_support import make_application, make_broker, make_product
from tests.support import login, make_branch, make_staff

TODAY = utcnow().date()
DASHBOARDS = ("sales", "compliance", "lending", "brokerage", "billing", "forex")


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# ---------------------------------------------------------------- the world


@dataclass
class World:
    mum: int
    syd: int
    users: dict[str, StaffProfile]
    broker_id: int
    period: tuple[date, date]
    usernames: dict[str, str]
    user_ids: dict[str, int]

    def username(self, key: str) -> str:
        return self.usernames[key]

    def uid(self, key: str) -> int:
        return self.user_ids[key]


_numbers = iter(range(1, 10**9))


def add_leads(agent: StaffProfile, statuses: list[str], created: datetime, source="manual"):
    rows = []
    for status in statuses:
        n = next(_numbers)
        rows.append(
            {
                "first_name": "Dash",
                "last_name": f"Lead{n}",
                "email": f"dash.lead{n}@test.example",
                "source": source,
                "status": status,
                "lost_reason": "No budget" if status == "lost" else None,
                "score": 10,
                "assigned_agent_id": agent.user_id,
                "branch_id": agent.branch_id,
                "created_at": created,
                "updated_at": created,
            }
        )
    db.session.execute(insert(Lead), rows)


def add_client(agent: StaffProfile, **fields) -> Client:
    n = next(_numbers)
    client = Client(
        name=f"Client {n}",
        email=f"client{n}@test.example",
        branch_id=agent.branch_id,
        relationship_manager_id=agent.user_id,
        **fields,
    )
    db.session.add(client)
    db.session.flush()
    return client


def add_document(
    client: Client | None, uploader: StaffProfile, expires_on, doc_type="passport", v=1, **owner
):
    db.session.add(
        Document(
            doc_type=doc_type,
            client_id=client.id if client else None,
            **owner,
            original_name=f"{doc_type}.pdf",
            storage_backend="local",
            storage_key=f"test/{uuid.uuid4().hex}",
            content_type="application/pdf",
            size_bytes=100,
            sha256="0" * 64,
            version=v,
            expires_on=expires_on,
            uploaded_by_id=uploader.user_id,
        )
    )


def add_invoice(client: Client, due: date, total: str, paid: str = "0.00", status="issued"):
    n = next(_numbers)
    db.session.add(
        Invoice(
            number=f"INV-T-{n:06d}",
            client_id=client.id,
            issue_date=due - timedelta(days=30),
            due_date=due,
            status=status,
            subtotal=Decimal(total),
            tax_total=Decimal("0.00"),
            total=Decimal(total),
            amount_paid=Decimal(paid),
        )
    )


def add_exchange(client: Client, sell: str, buy: str, amount: str, executed: datetime | None):
    db.session.add(
        FxExchange(
            client_id=client.id,
            sell_currency=sell,
            buy_currency=buy,
            sell_amount=Decimal(amount),
            buy_amount=Decimal(amount) * 2,
            mid_rate=Decimal("2"),
            spread_bps=50,
            client_rate=Decimal("2"),
            status="executed" if executed else "quoted",
            quote_expires_at=(executed or utcnow()) + timedelta(minutes=1),
            executed_at=executed,
        )
    )


def add_instalments(application_id: int, plan: list[tuple[int, str, int | None]]):
    """(days ago due, status, days after due paid or None)."""
    for number, (ago, status, paid_after) in enumerate(plan, start=1):
        due = TODAY - timedelta(days=ago)
        db.session.add(
            LoanInstalment(
                application_id=application_id,
                number=number,
                due_date=due,
                principal=Decimal("900.00"),
                interest=Decimal("100.00"),
                total=Decimal("1000.00"),
                paid_principal=Decimal("900.00") if status == "paid" else Decimal("0.00"),
                paid_interest=Decimal("100.00") if status == "paid" else Decimal("0.00"),
                status=status,
                paid_on=due + timedelta(days=paid_after) if paid_after is not None else None,
            )
        )


def build_world(currencies: tuple[str, str, str] = ("INR", "USD", "EUR")) -> World:
    """Two branches' staff and records of every desk. ``currencies`` (base, two foreign) are
    created here: a database shared with other tests passes codes nobody else uses."""
    inr, usd, eur = currencies
    mum, syd = make_branch("DMUM"), make_branch("DSYD", tz="Australia/Sydney")
    users = {
        "admin": make_staff("Admin", mum),
        "manager": make_staff("Manager", mum),
        "agent": make_staff("Agent", mum),
        "agent2": make_staff("Agent", mum),
        "manager_syd": make_staff("Manager", syd),
        "agent_syd": make_staff("Agent", syd),
        "compliance": make_staff("Compliance", mum),
        "bdm": make_staff("LoanOfficer", syd),
        "bdm2": make_staff("LoanOfficer", syd),
        "broker": make_staff("Broker", syd),
        "auditor": make_staff("Auditor", mum),
    }
    agent, agent2, agent_syd = users["agent"], users["agent2"], users["agent_syd"]
    first, last = TODAY - timedelta(days=40), TODAY - timedelta(days=10)
    inside, before = at(TODAY - timedelta(days=20)), at(TODAY - timedelta(days=60))

    # Sales: agent has 3 new, 2 contacted, 2 qualified, 1 converted, 1 lost in the period
    # (web form: 2 of them, 1 converted) and 4 older leads; agent2 and the Sydney agent others.
    add_leads(agent, ["new", "new", "new", "contacted", "contacted", "qualified"], inside)
    add_leads(agent, ["qualified", "lost"], at(first, 0))  # first instant of the period
    add_leads(agent, ["converted", "new"], at(last, 23), source="web_form")
    add_leads(agent, ["new", "new", "qualified", "converted"], before)
    add_leads(agent, ["new"], at(last + timedelta(days=1), 0))  # just after the period
    add_leads(agent2, ["new", "converted", "converted"], inside, source="referral")
    add_leads(agent_syd, ["new", "new", "qualified", "converted"], inside)

    # Compliance and brokerage: clients by KYC status and segment, documents, cases.
    c1 = add_client(agent, kyc_status="verified", segment="hni")
    c2 = add_client(agent, kyc_status="pending", segment="retail")
    c3 = add_client(agent2, kyc_status="expired", segment="hni")
    c4 = add_client(agent_syd, kyc_status="pending", segment="affluent")
    c5 = add_client(agent, kyc_status="pending", segment="retail")
    uploader = users["agent"]
    add_document(c1, uploader, TODAY + timedelta(days=10), v=1)  # superseded by v2
    add_document(c1, uploader, TODAY + timedelta(days=400), v=2)
    add_document(c1, uploader, TODAY + timedelta(days=5), doc_type="pan_card")
    add_document(c2, uploader, TODAY + timedelta(days=45))
    add_document(c2, uploader, TODAY - timedelta(days=3), doc_type="address_proof")
    add_document(c3, uploader, TODAY + timedelta(days=20))
    add_document(c4, uploader, TODAY + timedelta(days=15))
    add_document(c5, uploader, TODAY + timedelta(days=75))
    lead_id = db.session.scalar(select(Lead.id).where(Lead.assigned_agent_id == agent.user_id))
    add_document(None, uploader, TODAY + timedelta(days=8), lead_id=lead_id)  # not a client's
    for client, reviewer in ((c1, "compliance"), (c2, "compliance"), (c3, None), (c4, None)):
        db.session.add(
            KycCase(
                client_id=client.id,
                status="in_review",
                submitted_at=inside,
                reviewer_id=users[reviewer].user_id if reviewer else None,
            )
        )
    db.session.add(KycCase(client_id=c5.id, status="pending"))
    infy = Instrument(symbol="DINFY", name="Infosys", currency="INR", last_price=Decimal("1500"))
    bond = Instrument(symbol="DBOND", name="Bond", currency="INR", last_price=Decimal("101.25"))
    db.session.add_all([infy, bond])
    db.session.flush()
    for client, instrument, quantity in (
        (c1, infy, "10"),  # 15,000.00
        (c1, bond, "4"),  # 405.00
        (c3, infy, "2"),  # 3,000.00
        (c2, bond, "1"),  # 101.25
        (c4, infy, "100"),  # Sydney: 150,000.00
    ):
        db.session.add(
            Position(
                client_id=client.id,
                instrument_id=instrument.id,
                quantity=Decimal(quantity),
                cost=Decimal("1.00"),
            )
        )

    # Billing: outstanding invoices by days past due (Mumbai) and one in Sydney.
    add_invoice(c1, TODAY + timedelta(days=5), "100.00")  # not due
    add_invoice(c1, TODAY, "200.00", "50.00", status="partially_paid")  # 0-30: 150 due
    add_invoice(c2, TODAY - timedelta(days=30), "300.00", status="overdue")  # 0-30
    add_invoice(c2, TODAY - timedelta(days=31), "400.00", status="overdue")  # 31-60
    add_invoice(c3, TODAY - timedelta(days=91), "500.00", status="overdue")  # 90+
    add_invoice(c3, TODAY - timedelta(days=45), "999.00", "999.00", status="paid")  # settled
    add_invoice(c5, TODAY - timedelta(days=70), "600.00", status="void")  # not outstanding
    add_invoice(c4, TODAY - timedelta(days=40), "700.00", status="overdue")  # Sydney 31-60

    # Forex: executed exchanges by pair in and out of the period, and an unexecuted quote.
    for code in currencies:
        db.session.add(Currency(code=code, name=code))
    db.session.flush()
    add_exchange(c1, usd, inr, "100.00", inside)
    add_exchange(c1, usd, inr, "250.00", at(first, 0))
    add_exchange(c2, eur, inr, "80.00", inside)
    add_exchange(c2, usd, inr, "999.00", before)
    add_exchange(c2, usd, eur, "50.00", None)
    add_exchange(c4, usd, inr, "70.00", inside)

    # Lending (Sydney): applications by stage and BDM, a settled loan with instalments.
    bdm, bdm2 = users["bdm"], users["bdm2"]
    broker = make_broker(syd, users["broker"])
    product = make_product()
    for who, stage, created, via in (
        (bdm, "inquiry", inside, broker),
        (bdm, "assessment", inside, broker),
        (bdm, "assessment", inside, None),
        (bdm2, "approved", inside, broker),
        (bdm, "declined", before, broker),
    ):
        make_application(who, product, via, stage=stage, created_at=created)
    settled = make_application(
        bdm, product, broker, stage="settled", created_at=inside, arrears_bucket="1-30"
    )
    other = make_application(
        bdm2, product, None, stage="settled", created_at=before, arrears_bucket="current"
    )
    # Due in the period: 2 on time, 1 late, 1 unpaid; outside: one due before, one due today.
    add_instalments(
        settled.id,
        [(50, "paid", 0), (35, "paid", -2), (25, "paid", 0), (15, "paid", 3), (12, "late", None)],
    )
    add_instalments(other.id, [(30, "paid", 5), (0, "scheduled", None)])
    db.session.commit()
    return World(
        mum.id,
        syd.id,
        users,
        broker.id,
        (first, last),
        {key: profile.user.username for key, profile in users.items()},
        {key: profile.user_id for key, profile in users.items()},
    )


@pytest.fixture
def world(app) -> World:
    return build_world()


# ---------------------------------------------------------------- reading a dashboard

ROW = re.compile(
    r'data-label="(?P<label>[^"]*)" data-count="(?P<count>\d+)" '
    r'data-value="(?P<value>[^"]*)" data-href="(?P<href>[^"]*)"'
)


def charts_of(page: str) -> dict[str, dict[str, tuple[int, str, str]]]:
    """chart key -> bar label -> (count, value, list URL), read from the page's tables."""
    charts = {}
    for part in page.split('data-chart="')[1:]:
        key = part[: part.index('"')]
        charts[key] = {
            html.unescape(m["label"]): (int(m["count"]), m["value"], html.unescape(m["href"]))
            for m in ROW.finditer(part)
        }
    return charts


def open_dashboard(client, name: str, **filters) -> dict:
    response = client.get(f"/dashboards/{name}/", query_string=filters)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return charts_of(response.get_data(as_text=True))


def record_count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.get_data(as_text=True)
    found = re.search(r"Record Count:</strong>\s*(\d+)", page)
    if found is None:
        assert "No records found" in page, url
        return 0
    return int(found.group(1))


def assert_lists_agree(client, charts: dict, keys: tuple[str, ...]) -> int:
    """Every bar with records opens a list showing exactly that many; returns bars checked."""
    checked = 0
    for key in keys:
        for label, (count, _, url) in charts[key].items():
            if count and url:
                assert record_count(client, url) == count, (key, label, url)
                checked += 1
    return checked


def counts(chart: dict) -> dict[str, int]:
    return {label: count for label, (count, _, _) in chart.items()}


def sign_in(client, world: World, key: str):
    client.get("/logout/")
    assert login(client, world.username(key)).status_code == 302


# ---------------------------------------------------------------- each dashboard


def test_sales_dashboard_numbers_are_the_lead_lists_counts(client, world):
    sign_in(client, world, "admin")
    first, last = world.period
    charts = open_dashboard(
        client,
        "sales",
        date_from=first.isoformat(),
        date_to=last.isoformat(),
        branch=world.mum,
        agent=world.uid("agent"),
    )
    assert counts(charts["lead-funnel"]) == {
        "New": 4,
        "Contacted": 2,
        "Qualified": 2,
        "Converted": 1,
        "Lost": 1,
    }
    by_source = charts["conversion-by-source"]
    assert by_source["Web form"][:2] == (1, "50.0")  # 1 of 2 converted
    assert by_source["Manual"][:2] == (0, "0.0")
    agent_bar = next(iter(charts["conversion-by-agent"].values()))
    assert len(charts["conversion-by-agent"]) == 1 and agent_bar[:2] == (1, "10.0")
    assert "_flt_" in charts["lead-funnel"]["Qualified"][2]
    assert assert_lists_agree(client, charts, tuple(charts)) == 7


def test_compliance_dashboard_numbers_are_the_lists_counts(client, world):
    sign_in(client, world, "compliance")
    charts = open_dashboard(client, "compliance", branch=world.mum)
    assert counts(charts["kyc-status"]) == {
        "Pending": 2,
        "Verified": 1,
        "Rejected": 0,
        "Expired": 1,
    }
    # Newest versions only: c1's passport v1 (10 days) is superseded by v2 (400 days).
    assert counts(charts["documents-expiring"]) == {
        "Expired": 1,
        "Next 30 days": 2,
        "31-60 days": 1,
        "61-90 days": 1,
    }
    waiting = counts(charts["kyc-cases-waiting"])
    assert waiting == {"(unassigned)": 1, next(k for k in waiting if k != "(unassigned)"): 2}
    assert assert_lists_agree(client, charts, tuple(charts)) == 9

    # Unfiltered: both branches; a lead's document expiring in 8 days is not a client's.
    everyone = open_dashboard(client, "compliance")
    assert counts(everyone["documents-expiring"])["Next 30 days"] == 3
    assert assert_lists_agree(client, everyone, ("documents-expiring",)) == 4

    agent_only = open_dashboard(client, "compliance", agent=world.uid("agent2"))
    assert counts(agent_only["kyc-status"])["Expired"] == 1
    assert sum(counts(agent_only["kyc-status"]).values()) == 1
    assert assert_lists_agree(client, agent_only, tuple(agent_only)) == 3


def test_lending_dashboard_numbers_are_the_lists_counts(client, world):
    sign_in(client, world, "admin")
    first, last = world.period
    charts = open_dashboard(
        client,
        "lending",
        date_from=first.isoformat(),
        date_to=last.isoformat(),
        branch=world.syd,
        broker=world.broker_id,
    )
    stages = counts(charts["applications-by-stage"])
    assert {k: v for k, v in stages.items() if v} == {
        "Inquiry": 1,
        "Assessment": 1,
        "Approved": 1,
        "Settled": 1,
    }
    assert sum(counts(charts["applications-by-month"]).values()) == 4
    assert sorted(counts(charts["applications-by-bdm"]).values()) == [1, 3]
    # Instalments due in the period of the broker's loans: 35 and 25 days ago on time, 15 days
    # ago paid 3 days late, 12 days ago unpaid (50 days ago is before the period).
    assert counts(charts["repayment-compliance"]) == {
        "Paid on time": 2,
        "Paid late": 1,
        "Late, unpaid": 1,
    }
    assert counts(charts["arrears-buckets"])["1-30 days"] == 1
    assert sum(counts(charts["arrears-buckets"]).values()) == 1
    assert assert_lists_agree(client, charts, tuple(charts)) >= 10

    page = client.get(
        "/dashboards/lending/",
        query_string={
            "date_from": first.isoformat(),
            "date_to": last.isoformat(),
            "broker": world.broker_id,
        },
    ).get_data(as_text=True)
    assert "On time: 50.0% of 4 instalments due; 2 late." in page


def test_brokerage_dashboard_values_holdings_by_segment(client, world):
    sign_in(client, world, "manager")
    charts = open_dashboard(client, "brokerage")
    segments = charts["portfolio-by-segment"]
    # Mumbai only: HNI clients c1 (15,000 + 405) and c3 (3,000); retail c2 (101.25) and c5.
    assert segments["HNI"][:2] == (2, "18405.00")
    assert segments["Retail"][:2] == (2, "101.25")
    assert segments["Affluent"][:2] == (0, "0.00")
    assert assert_lists_agree(client, charts, tuple(charts)) == 2

    filtered = open_dashboard(client, "brokerage", agent=world.uid("agent2"))
    assert filtered["portfolio-by-segment"]["HNI"][:2] == (1, "3000.00")
    assert assert_lists_agree(client, filtered, tuple(filtered)) == 1


def test_billing_dashboard_ages_outstanding_invoices(client, world):
    sign_in(client, world, "admin")
    charts = open_dashboard(client, "billing", branch=world.mum)
    ageing = charts["invoice-ageing"]
    assert {label: (count, value) for label, (count, value, _) in ageing.items()} == {
        "not due": (1, "100.00"),
        "0-30 days": (2, "450.00"),
        "31-60 days": (1, "400.00"),
        "61-90 days": (0, "0.00"),
        "90+ days": (1, "500.00"),
    }
    assert assert_lists_agree(client, charts, tuple(charts)) == 4
    everyone = open_dashboard(client, "billing")
    assert everyone["invoice-ageing"]["31-60 days"][:2] == (2, "1100.00")
    assert assert_lists_agree(client, everyone, tuple(everyone)) == 4


def test_forex_dashboard_counts_exchanges_by_pair(client, world):
    sign_in(client, world, "manager")
    first, last = world.period
    charts = open_dashboard(client, "forex", date_from=first.isoformat(), date_to=last.isoformat())
    pairs = charts["fx-volume-by-pair"]
    assert counts(pairs) == {"USD/INR": 2, "EUR/INR": 1}  # Mumbai's, executed in the period
    assert assert_lists_agree(client, charts, tuple(charts)) == 2
    page = client.get("/dashboards/forex/").get_data(as_text=True)
    assert counts(charts_of(page)["fx-volume-by-pair"]) == {"USD/INR": 3, "EUR/INR": 1}
    assert "<td>1,349.00</td>" in page  # 100 + 250 + 999 USD sold for rupees, whenever


# ---------------------------------------------------------------- row scoping


def test_an_agent_sees_only_their_own_numbers_and_choices(client, world):
    sign_in(client, world, "agent")
    charts = open_dashboard(client, "sales")
    # agent: 6 + 2 + 2 + 4 + 1 leads, whatever the period; nobody else's.
    assert sum(counts(charts["lead-funnel"]).values()) == 15
    assert list(counts(charts["conversion-by-agent"])) == [
        f"Agent {world.username('agent').capitalize()}"
    ]
    assert assert_lists_agree(client, charts, ("lead-funnel",)) == 5
    page = client.get("/dashboards/sales/").get_data(as_text=True)
    options = re.findall(
        r'<option value="(\d+)"', page.split('id="filter-agent"')[1].split("</select>")[0]
    )
    assert options == [str(world.uid("agent"))]
    other = client.get("/dashboards/sales/", query_string={"agent": world.uid("agent2")})
    assert other.status_code == 422


def test_a_manager_sees_only_their_branch(client, world):
    sign_in(client, world, "manager")
    charts = open_dashboard(client, "sales")
    # Mumbai: agent's 15 and agent2's 3; the Sydney agent's 4 are not counted.
    assert sum(counts(charts["lead-funnel"]).values()) == 18
    page = client.get("/dashboards/sales/").get_data(as_text=True)
    agents = page.split('id="filter-agent"')[1].split("</select>")[0]
    branches = page.split('id="filter-branch"')[1].split("</select>")[0]
    assert str(world.uid("agent")) in agents and str(world.uid("agent2")) in agents
    assert f'value="{world.uid("agent_syd")}"' not in agents
    assert f'value="{world.syd}"' not in branches
    refused = client.get("/dashboards/sales/", query_string={"branch": world.syd})
    assert refused.status_code == 422
    assert "is among the ones you can choose" in refused.get_data(as_text=True)

    sign_in(client, world, "manager_syd")
    syd = open_dashboard(client, "sales")
    assert sum(counts(syd["lead-funnel"]).values()) == 4


def test_a_broker_sees_only_the_applications_they_introduced(client, world):
    sign_in(client, world, "broker")
    charts = open_dashboard(client, "lending")
    # Introduced by the broker: inquiry, assessment, approved, declined and the settled loan.
    assert sum(counts(charts["applications-by-stage"]).values()) == 5
    assert (
        assert_lists_agree(client, charts, ("applications-by-stage", "repayment-compliance")) >= 4
    )
    assert client.get("/dashboards/sales/").status_code in (302, 403)


# ---------------------------------------------------------------- bad filters


@pytest.mark.parametrize(
    ("dashboard", "args", "words"),
    [
        ("sales", {"date_from": "2026-13-45"}, "From: is not a date (YYYY-MM-DD): '2026-13-45'"),
        ("lending", {"date_to": "yesterday"}, "To: is not a date"),
        ("forex", {"date_from": "2026-05-02", "date_to": "2026-05-01"}, "is after the end date"),
        ("sales", {"agent": "999999"}, "Agent: no agent with id 999999"),
        ("compliance", {"branch": "abc"}, "Branch: must be a whole number"),
        ("lending", {"bdm": "-4"}, "BDM: must be between"),
        ("lending", {"broker": "424242"}, "Broker: no broker with id 424242"),
        ("billing", {"branch": "99999999999999999999"}, "Branch: must be between"),
        ("brokerage", {"agent": "0"}, "Agent: must be between"),
    ],
)
def test_bad_filters_answer_422_with_the_message(client, world, dashboard, args, words):
    sign_in(client, world, "admin")
    response = client.get(f"/dashboards/{dashboard}/", query_string=args)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert words in html.unescape(page)
    assert 'id="dashboard-filters"' in page  # the form is there to correct it
    assert "data-chart=" not in page  # no chart drawn from bad filters


# ---------------------------------------------------------------- SQL aggregation


def _statements_per_request(app, client, url: str) -> int:
    seen = []

    def count_statement(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count_statement)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
    assert response.status_code == 200
    return len(seen)


def _own_statements(app, client, url: str) -> int:
    """Statements of the dashboard itself: all but FAB's permission checks of the menu, which
    every page of the role makes."""
    seen = []

    def count_statement(conn, cursor, statement, parameters, context, executemany):
        if "ab_permission_view" not in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count_statement)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count_statement)
    return len(seen)


def _add_many(world: World, n: int) -> None:
    agent = world.users["agent"]
    add_leads(agent, ["new", "qualified", "converted"] * n, at(TODAY - timedelta(days=20)))
    clients = [add_client(agent, kyc_status="pending", segment="retail") for _ in range(n)]
    bond = Instrument(symbol=f"DB{n}", name="Bond", currency="INR", last_price=Decimal("100"))
    db.session.add(bond)
    db.session.flush()
    for client in clients:
        add_document(client, agent, TODAY + timedelta(days=20))
        add_invoice(client, TODAY - timedelta(days=40), "100.00", status="overdue")
        add_exchange(client, "USD", "INR", "10.00", at(TODAY - timedelta(days=2)))
        db.session.add(KycCase(client_id=client.id, status="in_review", submitted_at=utcnow()))
        db.session.add(
            Position(
                client_id=client.id, instrument_id=bond.id, quantity=Decimal("1"), cost=Decimal("1")
            )
        )
    product = make_product()
    for _ in range(n // 10):
        application = make_application(world.users["bdm"], product, stage="settled")
        add_instalments(application.id, [(20, "paid", 0), (10, "late", None)])
    db.session.commit()


def test_statements_per_dashboard_do_not_grow_with_the_rows(app, client, world):
    sign_in(client, world, "admin")
    urls = [f"/dashboards/{name}/?branch={world.mum}" for name in DASHBOARDS]
    for url in urls:  # warm up (first-request work is not the dashboard's)
        _statements_per_request(app, client, url)
    before = {url: _statements_per_request(app, client, url) for url in urls}
    _add_many(world, 200)
    after = {url: _statements_per_request(app, client, url) for url in urls}
    assert after == before
    # Who is asking (user, roles, groups, branch), the filters' choices, one per chart, the
    # navbar's unread count.
    for name, url in zip(DASHBOARDS, urls, strict=True):
        charts = len(open_dashboard(client, name))
        assert _own_statements(app, client, url) <= 5 + 3 + charts + 1, url
    # The growth is real: the agent's funnel now counts 600 more leads.
    charts = open_dashboard(client, "sales", agent=world.uid("agent"))
    assert sum(counts(charts["lead-funnel"]).values()) == 615


# ---------------------------------------------------------------- page and assets


def test_plotly_comes_from_the_app_and_nothing_from_the_internet(client, world):
    sign_in(client, world, "manager")
    page = client.get("/dashboards/sales/").get_data(as_text=True)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    plotly_src = next(src for src in scripts if "plotly" in src)
    assert plotly_src.startswith("/dashboards/plotly-")
    assert not [src for src in scripts if src.startswith(("http:", "https:", "//"))]
    assert "cdn.plot.ly" not in page and "MathJax" not in page
    assert '"displaylogo": false' in page and '"topojsonURL": "/dashboards/no-topojson/"' in page
    assert "plotly_click" in page

    js = client.get(plotly_src)
    assert js.status_code == 200
    assert js.mimetype == "text/javascript"
    assert js.get_data()[:40].lstrip().startswith(b"/**\n* plotly.js")
    assert js.cache_control.max_age == 365 * 24 * 3600 and js.cache_control.public
    again = client.get(plotly_src, headers={"If-None-Match": js.headers["ETag"]})
    assert again.status_code == 304


def test_export_links_carry_the_filters(client, world):
    sign_in(client, world, "admin")
    page = client.get(
        "/dashboards/lending/", query_string={"date_from": "2026-01-01", "bdm": world.uid("bdm")}
    ).get_data(as_text=True)
    link = (
        f"/reports/repayment-compliance/export/xlsx?date_from=2026-01-01&amp;bdm={world.uid('bdm')}"
    )
    assert link in page
    for key in ("applications-by-stage", "arrears-buckets"):
        for fmt in ("csv", "pdf"):
            assert f"/reports/{key}/export/{fmt}?date_from=2026-01-01" in page


def test_each_dashboard_is_only_for_its_audience(client, world):
    expected = {
        "agent": {"sales", "brokerage", "forex"},
        "compliance": {"compliance"},
        "bdm": {"lending"},
        "broker": {"lending"},
        "manager": set(DASHBOARDS),
        "auditor": set(DASHBOARDS),
    }
    for who, allowed in expected.items():
        sign_in(client, world, who)
        for name in DASHBOARDS:
            status = client.get(f"/dashboards/{name}/").status_code
            assert (status == 200) == (name in allowed), (who, name, status)


# ---------------------------------------------------------------- reports


def test_each_chart_is_a_report_taking_the_dashboards_filters(app, world):
    from flask_appbuilder.security.sqla.models import User
    from flask_login import login_user

    from app.core.errors import FieldError
    from app.dashboards.catalogue import DASHBOARDS as BOARDS
    from app.reports.registry import get_report

    for board in BOARDS:
        for spec in board.charts:
            report = get_report(spec.key)
            assert report is not None and report.resource == board.resource, spec.key
    first, last = world.period
    with app.test_request_context("/"):
        login_user(db.session.get(User, world.uid("manager")))  # Mumbai's manager
        ageing = get_report("invoice-ageing").build({})
        assert [tuple(row) for row in ageing.rows] == [
            ("not due", 1, Decimal("100.00")),
            ("0-30 days", 2, Decimal("450.00")),
            ("31-60 days", 1, Decimal("400.00")),
            ("61-90 days", 0, Decimal("0.00")),
            ("90+ days", 1, Decimal("500.00")),
        ]
        funnel = get_report("lead-funnel").build(
            {
                "date_from": first.isoformat(),
                "date_to": last.isoformat(),
                "agent": str(world.uid("agent")),
            }
        )
        assert list(funnel.columns) == ["Status", "Leads"]
        assert dict(funnel.rows) == {
            "New": 4,
            "Contacted": 2,
            "Qualified": 2,
            "Converted": 1,
            "Lost": 1,
        }
        assert funnel.filters == {
            "From": first.isoformat(),
            "To": last.isoformat(),
            "Agent": f"Agent {world.username('agent').capitalize()}",
        }
        with pytest.raises(FieldError, match="is not a date"):
            get_report("repayment-compliance").build({"date_to": "2026-02-30"})
        with pytest.raises(FieldError, match="among the ones you can choose"):
            get_report("lead-funnel").build({"branch": str(world.syd)})


# ---------------------------------------------------------------- PostgreSQL


def test_dashboards_on_postgresql_agree_with_their_lists(pg_app, pg_client):
    world = build_world()
    sign_in(pg_client, world, "admin")
    checked = 0
    for name in DASHBOARDS:
        charts = open_dashboard(pg_client, name)
        checked += assert_lists_agree(pg_client, charts, tuple(charts))
    assert checked >= 30


def test_months_are_utc_months_whatever_the_database_session_time_zone(pg_app, pg_client):
    """An application made at 23:30 UTC on 31 October is October's, also for a PostgreSQL
    session in Kolkata (where it is already 1 November)."""
    from tests.lending_support import make_application as application

    world = build_world()
    bdm = world.users["bdm"]
    application(bdm, created_at=datetime(2025, 10, 31, 23, 30, tzinfo=UTC))
    db.session.commit()

    def kolkata(dbapi_connection, connection_record, connection_proxy):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'Asia/Kolkata'")

    db.engine.dispose()
    event.listen(db.engine, "checkout", kolkata)
    try:
        sign_in(pg_client, world, "admin")
        charts = open_dashboard(pg_client, "lending", date_from="2025-10-01", date_to="2025-11-30")
    finally:
        event.remove(db.engine, "checkout", kolkata)
        db.engine.dispose()
    months = counts(charts["applications-by-month"])
    assert months == {"2025-10": 1, "2025-11": 0}
    assert record_count(pg_client, charts["applications-by-month"]["2025-10"][2]) == 1


def test_drill_down_lists_keep_the_desks_row_scoping(client, world):
    """The lists behind the charts are the desks' own rows: an agent sees their clients'
    invoices, exchanges, cases and documents only, a manager their branch's."""
    expected = {
        # agent2's one client (c3): two invoices, no exchange, one case, one document.
        "agent2": {"invoices": 2, "exchanges": 0, "kyccases": 1, "documents": 1},
        # Mumbai: 7 invoices, 5 exchanges, 4 cases, 7 documents (c1's two passports counted).
        "manager": {"invoices": 7, "exchanges": 5, "kyccases": 4, "documents": 7},
        "manager_syd": {"invoices": 1, "exchanges": 1, "kyccases": 1, "documents": 1},
    }
    for who, lists in expected.items():
        sign_in(client, world, who)
        for name, count in lists.items():
            assert record_count(client, f"/dashboards/{name}/list/") == count, (who, name)
    sign_in(client, world, "bdm")
    assert record_count(client, "/dashboards/instalments/list/") == 5
    sign_in(client, world, "bdm2")
    assert record_count(client, "/dashboards/instalments/list/") == 2
    sign_in(client, world, "agent")
    assert client.get("/dashboards/instalments/list/").status_code in (302, 403)
