"""Demo data for `flask crm seed-demo`: enough to click around every screen."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from app.core.types import utcnow
from app.extensions import db
from app.leads.models import INTERACTION_KINDS, INVESTMENT_CAPACITY_BANDS, LEAD_SOURCES
from app.leads.services import add_interaction, create_lead
from app.org.models import Branch
from app.org.services import create_staff, prepare_branch

DEMO_PASSWORD = "FinCRM-demo-2026"

BRANCHES = [
    ("MUM", "Mumbai", "Nariman Point, Mumbai 400021", "Asia/Kolkata"),
    ("SYD", "Sydney", "1 Martin Place, Sydney NSW 2000", "Australia/Sydney"),
]
# username, role, branch code, first name, last name, title
STAFF = [
    ("admin", "Admin", "MUM", "Asha", "Rao", "Operations head"),
    ("manager", "Manager", "MUM", "Vikram", "Mehta", "Branch manager"),
    ("agent", "Agent", "MUM", "Priya", "Shah", "Relationship agent"),
    ("agent2", "Agent", "MUM", "Rahul", "Iyer", "Relationship agent"),
    ("manager.syd", "Manager", "SYD", "Olivia", "Brown", "Branch manager"),
    ("agent.syd", "Agent", "SYD", "Jack", "Wilson", "Relationship agent"),
    ("compliance", "Compliance", "MUM", "Meera", "Nair", "Compliance officer"),
    ("bdm", "LoanOfficer", "SYD", "Liam", "Taylor", "Business development manager"),
    ("broker", "Broker", "SYD", "Chloe", "Martin", "Mortgage broker"),
    ("auditor", "Auditor", "MUM", "Kiran", "Das", "Internal auditor"),
]
FIRST = ["Aarav", "Diya", "Ishaan", "Anaya", "Kabir", "Saanvi", "Noah", "Mia", "Leo", "Ava"]
LAST = ["Kapoor", "Gupta", "Singh", "Joshi", "Reddy", "Smith", "Jones", "Nguyen", "Lee", "Khan"]
COMPANIES = [None, "Acme Exports", "Blue Ocean Traders", "Kaveri Textiles", "Harbour Capital"]
# Prefix and how many random digits follow it, per branch.
PHONE_PLAN = {"MUM": ("+91 98", 8), "SYD": ("+61 412 ", 6)}


def seed_demo(lead_count: int = 60, seed: int = 7) -> dict | None:
    """Add the demo records (caller commits); None if they are already there."""
    from flask_appbuilder.security.sqla.models import User

    if db.session.scalar(select(User.id).where(User.username == "admin")) is not None:
        return None
    rng = random.Random(seed)
    branches: dict[str, Branch] = {}
    for code, name, address, tz in BRANCHES:
        branch = prepare_branch(Branch(code=code, name=name, address=address, timezone=tz))
        db.session.add(branch)
        branches[code] = branch
    db.session.flush()

    profiles = {}
    for username, role, code, first, last, title in STAFF:
        manager = profiles.get("manager" if code == "MUM" else "manager.syd")
        profiles[username] = create_staff(
            username,
            DEMO_PASSWORD,
            [role],
            branches[code],
            first,
            last,
            f"{username}@fincrm.example",
            title=title,
            manager_id=manager.user_id if manager and role == "Agent" else None,
        )

    agents = [p for u, p in profiles.items() if u.startswith("agent")]
    now = utcnow()
    for i in range(lead_count):
        agent = agents[i % len(agents)]
        code = agent.branch.code
        first, last = rng.choice(FIRST), rng.choice(LAST)
        prefix, width = PHONE_PLAN[code]
        phone = f"{prefix}{rng.randrange(10 ** (width - 1), 10**width)}"
        status = rng.choice(["new", "new", "contacted", "qualified"])
        lead = create_lead(
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{i}@example.com".lower(),
            phone=phone,
            company=rng.choice(COMPANIES),
            source=rng.choice(LEAD_SOURCES),
            status=status,
            investment_capacity=rng.choice(INVESTMENT_CAPACITY_BANDS),
            assigned_agent_id=agent.user_id,
            branch_id=agent.branch_id,
            next_follow_up_at=now + timedelta(days=rng.randint(-3, 14)),
        )
        for _ in range(rng.randint(0, 3)):
            add_interaction(
                lead,
                kind=rng.choice(INTERACTION_KINDS),
                occurred_at=now - timedelta(days=rng.randint(0, 30), hours=rng.randint(0, 12)),
                outcome=rng.choice(["reached", "voicemail", "interested", "call back later"]),
                body="Demo interaction.",
                author=agent.user,
            )
    clients = _demo_clients(rng, agents)
    db.session.flush()
    _demo_kyc_case(agents[0])
    loans = _demo_lending(profiles["bdm"], profiles["broker"])
    offers = _demo_offers(profiles["manager"])
    invoices = _demo_billing(profiles["agent"])
    trades = _demo_brokerage(agents[0])
    exchanges = _demo_forex(profiles["agent"])
    report_schedules = _demo_report_schedules()
    _demo_dashboards(rng, agents, profiles["agent"])
    return {
        "clients": clients,
        "loans": loans,
        "offers": offers,
        "invoices": invoices,
        "trades": trades,
        "exchanges": exchanges,
        "report_schedules": report_schedules,
        "branches": len(branches),
        "leads": lead_count,
        "logins": [(username, role) for username, role, *_ in STAFF],
    }


def _demo_clients(rng: random.Random, agents: list) -> int:
    """A few clients per agent, Indian ones with a valid PAN and Aadhaar (shown masked)."""
    from stdnum import verhoeff

    from app.clients.models import Client
    from app.clients.risk import QUESTIONS, assess_risk
    from app.clients.services import prepare_client
    from app.security.scoping import Actor

    count = 0
    for agent in agents:
        for _ in range(3):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            fields = {}
            if agent.branch.code == "MUM":
                letters = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3))
                fields["pan"] = (
                    f"{letters}P{last[0].upper()}{rng.randrange(1000, 10000)}{rng.choice('ABCDEFGH')}"
                )
                base = f"{rng.randrange(2, 10)}{rng.randrange(10**9, 10**10)}"
                fields["aadhaar"] = base + verhoeff.calc_check_digit(base)
            client = prepare_client(
                Client(
                    name=f"{first} {last}",
                    email=f"{first}.{last}.{count}@client.example".lower(),
                    branch_id=agent.branch_id,
                    relationship_manager_id=agent.user_id,
                    investment_capacity=rng.choice(INVESTMENT_CAPACITY_BANDS),
                    **fields,
                )
            )
            db.session.add(client)
            db.session.flush()
            assess_risk(
                client.id,
                {q.key: rng.choice(q.answers)[0] for q in QUESTIONS},
                Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id),
            )
            count += 1
        if agent.branch.code == "SYD":
            count += _demo_company(rng, agent)
    return count


def _demo_company(rng: random.Random, agent) -> int:
    """An Australian company client with a checked ACN (and the ABN made from it), a director
    and a contact."""
    from stdnum.au import acn

    from app.clients.models import Client, ClientContact, ClientDirector
    from app.clients.services import prepare_client, prepare_contact, prepare_director

    base = f"{rng.randrange(10**7, 10**8):08d}"
    number = base + acn.calc_check_digit(base)
    name = f"{rng.choice(LAST)} {rng.choice(['Holdings', 'Traders', 'Developments'])}"
    company = prepare_client(
        Client(
            client_type="company",
            name=name,
            legal_name=f"{name} Pty Ltd",
            acn=number,
            abn=acn.to_abn(number),
            email=f"accounts.{number}@company.example",
            branch_id=agent.branch_id,
            relationship_manager_id=agent.user_id,
            investment_capacity="1m_10m",
        )
    )
    db.session.add(company)
    db.session.flush()
    db.session.add(
        prepare_director(
            ClientDirector(client=company, full_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        )
    )
    db.session.add(
        prepare_contact(
            ClientContact(
                client=company,
                kind="phone",
                label="Office",
                value="+61 2 9374 4000",
                preferred=True,
            )
        )
    )
    return 1


DEMO_PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def _demo_kyc_case(agent) -> None:
    """One client's KYC case, documents uploaded and submitted: the Compliance queue has work."""
    from app.clients.models import Client
    from app.documents.services import find_owner, upload_document
    from app.kyc.services import open_case, submit_case
    from app.security.scoping import Actor

    actor = Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id, agent.user.username)
    client = db.session.scalar(
        select(Client).where(Client.relationship_manager_id == agent.user_id).order_by(Client.id)
    )
    owner = find_owner(client_id=client.id)
    expires = utcnow().date() + timedelta(days=20)  # shows in the expiry report and alerts
    for doc_type in ("passport", "pan_card", "address_proof"):
        upload_document(
            owner, doc_type, f"{doc_type}.pdf", DEMO_PDF, expires_on=expires, actor=actor
        )
    case = open_case(client.id, actor)
    submit_case(case.id, actor)


def _demo_lending(bdm, broker_profile) -> int:
    """Products with fees, the demo broker working with the demo BDM, and three applications:
    one being assessed, one approved, one settled a few months ago with repayments made."""
    from decimal import Decimal

    from app.ledger.services import seed_chart
    from app.lending import services
    from app.lending.models import Broker, LoanProduct, LoanProductFee
    from app.lending.servicing import record_repayment

    seed_chart()
    home = LoanProduct(
        name="Owner-occupier home loan",
        loan_type="residential",
        min_rate=Decimal("4.5"),
        max_rate=Decimal("9.5"),
        min_term_months=60,
        max_term_months=360,
        min_amount=Decimal("50000"),
        max_amount=Decimal("3000000"),
    )
    home.fee_templates.append(LoanProductFee(fee_type="application", amount=Decimal("600.00")))
    business = LoanProduct(
        name="Business term loan",
        loan_type="business",
        min_rate=Decimal("6.0"),
        max_rate=Decimal("18.0"),
        min_term_months=6,
        max_term_months=120,
        min_amount=Decimal("20000"),
        max_amount=Decimal("2000000"),
    )
    broker = Broker(
        company="Harbour Mortgage Brokers",
        contact_name="Chloe Martin",
        email="chloe@harbour.example",
        branch_id=broker_profile.branch_id,
        user_id=broker_profile.user_id,
    )
    broker.bdms.append(bdm.user)
    db.session.add_all([home, business, broker])
    db.session.flush()

    def borrower(first: str, last: str) -> dict:
        return {
            "role": "borrower",
            "party_type": "individual",
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "annual_income": "120000",
        }

    made = []
    for amount, product, people, stages in (
        (
            "650000",
            home,
            [borrower("Emma", "Clarke"), borrower("Oliver", "Clarke")],
            ["assessment"],
        ),
        ("240000", business, [borrower("Noah", "Patel")], ["assessment", "approved"]),
        ("500000", home, [borrower("Ava", "Nguyen")], ["assessment", "approved", "settled"]),
    ):
        submitted = services.submit_application(
            {
                "product_id": product.id,
                "amount": amount,
                "term_months": 360 if product is home else 60,
                "interest_rate": "5.5" if product is home else "9.0",
                "repayment_frequency": "monthly",
                "broker_id": broker.id,
                "bdm_id": bdm.user_id,
                "purpose": "Demo application",
            },
            people,
        )
        settled_on = utcnow().date() - timedelta(days=100)
        for stage in stages:
            services.move_stage(submitted.application.id, stage, settled_on=settled_on)
        made.append(submitted.application)
    settled = made[-1]
    db.session.flush()
    for months in (1, 2):
        record_repayment(
            settled, settled.instalment_amount, utcnow().date() - timedelta(days=100 - 30 * months)
        )
    return len(made)


def _demo_offers(manager) -> int:
    """A Diwali offer for affluent and HNI clients (the next Diwali in the festival calendar,
    from a week before) and a "we miss you" offer for clients without an interaction in 90 days."""
    from app.offers.models import Offer
    from app.offers.services import festival_calendar, prepare_offer

    today = utcnow().date()
    diwalis = sorted(
        (day, name) for name, day in festival_calendar().items() if name.startswith("Diwali")
    )
    upcoming = [name for day, name in diwalis if day >= today] or [n for _, n in diwalis[-1:]]
    offers = [
        Offer(
            name="We miss you",
            subject="We miss you, {first_name}",
            body=(
                "Dear {first_name}, it has been a while. Book a free portfolio review with your "
                "relationship manager this month."
            ),
            channel="email",
            activity="inactive",
            activity_days=90,
            created_by_id=manager.user_id,
        )
    ]
    if upcoming:
        offers.append(
            Offer(
                name=f"{upcoming[0]}: gold savings",
                subject="Happy Diwali, {first_name}",
                body=(
                    "Dear {first_name}, celebrate Diwali with zero fees on gold savings plans "
                    "opened this festive week."
                ),
                channel="email",
                segments="affluent,hni",
                occasion=upcoming[0],
                lead_days=7,
                created_by_id=manager.user_id,
            )
        )
    for offer in offers:
        db.session.add(prepare_offer(offer))
    return len(offers)


def _demo_report_schedules() -> int:
    """Repayment compliance as a PDF to every manager, Monday 07:00 UTC, each for their own
    branch's loans."""
    from app.reports.models import ReportSchedule
    from app.reports.schedules import prepare_schedule

    schedule = ReportSchedule(
        name="Weekly repayment compliance to managers",
        report_key="repayment-compliance",
        file_format="pdf",
        frequency="weekly",
        weekday=0,
        hour=7,
        recipient_roles="Manager",
        filters="{}",
        active=True,
    )
    db.session.add(prepare_schedule(schedule))
    return 1


def _demo_billing(agent) -> int:
    """Products and services, a quotation accepted and converted to a draft invoice, an issued
    invoice partly paid, and a contract whose renewal is about 45 days away. Returns how many
    invoices were made."""
    from decimal import Decimal

    from sqlalchemy import select

    from app.billing import services
    from app.billing.models import BillingProduct, Contract
    from app.clients.models import Client

    clients = db.session.scalars(
        select(Client).where(Client.relationship_manager_id == agent.user_id).order_by(Client.id)
    ).all()
    if not clients:
        return 0
    products = [
        BillingProduct(
            name="Financial planning session",
            sku="SVC-PLAN",
            kind="service",
            unit_price=Decimal("7500.00"),
            tax_rate=Decimal("18.00"),
        ),
        BillingProduct(
            name="Portfolio review (quarterly)",
            sku="SVC-REVIEW",
            kind="service",
            unit_price=Decimal("12000.00"),
            tax_rate=Decimal("18.00"),
        ),
        BillingProduct(
            name="Printed annual report",
            sku="PRD-REPORT",
            kind="product",
            unit_price=Decimal("450.00"),
            tax_rate=Decimal("12.00"),
        ),
    ]
    for product in products:
        services.prepare_product(product)
    db.session.add_all(products)
    db.session.flush()
    today = utcnow().date()
    quotation = services.create_quotation(
        {
            "client_id": clients[0].id,
            "valid_until": today + timedelta(days=30),
            "notes": "Annual advisory package.",
            "lines": [
                {"product_id": products[0].id, "quantity": "2"},
                {"product_id": products[2].id, "quantity": "1"},
            ],
        }
    )
    services.move_quotation(quotation.id, "sent")
    services.move_quotation(quotation.id, "accepted")
    services.convert_quotation(quotation.id)
    client = clients[1] if len(clients) > 1 else clients[0]
    invoice = services.create_invoice(
        {
            "client_id": client.id,
            "due_date": today + timedelta(days=15),
            "lines": [{"product_id": products[1].id, "quantity": "1"}],
        }
    )
    services.issue_invoice(invoice.id, issue_date=today - timedelta(days=15))
    services.record_payment(
        invoice.id, {"amount": "5000.00", "method": "upi", "reference": "UPI-DEMO"}
    )
    db.session.add(
        Contract(
            client_id=clients[0].id,
            title="Wealth advisory retainer",
            terms="Quarterly portfolio reviews and two planning sessions a year.",
            value=Decimal("60000.00"),
            start_date=today - timedelta(days=320),
            end_date=today + timedelta(days=45),
            renewal_date=today + timedelta(days=45),
            status="active",
            created_by_id=agent.user_id,
        )
    )
    return 2


def _demo_brokerage(agent) -> int:
    """Three instruments with prices and a few trades for one of the agent's clients: buys and
    a partial sell settled, and a pending buy above the client's risk profile (flagged)."""
    from decimal import Decimal

    from app.brokerage import services
    from app.brokerage.models import Instrument
    from app.clients.models import Client

    made = {}
    for symbol, name, kind, risk, price in (
        ("INFY", "Infosys Ltd", "stock", "aggressive", "1523.40"),
        ("NIFTYBEES", "Nippon India ETF Nifty 50 BeES", "etf", "moderate", "268.15"),
        ("GSEC2033", "Government of India 7.18% 2033", "bond", "conservative", "101.625"),
    ):
        made[symbol] = services.prepare_instrument(
            Instrument(
                symbol=symbol,
                name=name,
                kind=kind,
                exchange="NSE",
                risk_level=risk,
                last_price=Decimal(price),
            )
        )
        db.session.add(made[symbol])
    db.session.flush()
    clients = db.session.scalars(
        select(Client)
        .where(Client.relationship_manager_id == agent.user_id)
        .order_by(Client.risk_profile != "aggressive", Client.id)
    ).all()
    client = clients[-1]  # one that is not aggressive, if the agent has one
    today = utcnow().date()
    count = 0
    for symbol, side, quantity, price, fees, days_ago, settle in (
        ("NIFTYBEES", "buy", "100", "250.00", "25.00", 20, True),
        ("GSEC2033", "buy", "50", "100.50", "10.00", 15, True),
        ("NIFTYBEES", "buy", "50", "262.00", "13.10", 10, True),
        ("NIFTYBEES", "sell", "60", "270.00", "16.20", 5, True),
        ("INFY", "buy", "10", "1510.00", "15.10", 1, False),
    ):
        trade = services.record_trade(
            {
                "client_id": client.id,
                "instrument_id": made[symbol].id,
                "side": side,
                "quantity": quantity,
                "price": price,
                "fees": fees,
                "trade_date": today - timedelta(days=days_ago),
            }
        )
        if settle:
            services.settle_trade(trade.id, today - timedelta(days=days_ago - 1))
        count += 1
    return count


def _demo_forex(agent) -> int:
    """INR, USD and EUR with rates, the desk's reserves topped up, a client with a USD wallet
    who sold 500 dollars for rupees (points earned), and two vouchers to spend points on."""
    from decimal import Decimal

    from app.clients.models import Client
    from app.forex import services, wallets
    from app.forex.models import FxRate
    from app.loyalty.models import Voucher

    for code, name in (("INR", "Indian rupee"), ("USD", "US dollar"), ("EUR", "Euro")):
        wallets.add_currency(code, name)
    as_of = utcnow()
    for base, quote, rate in (
        ("USD", "INR", "83.20"),
        ("EUR", "INR", "90.50"),
        ("USD", "EUR", "0.92"),
    ):
        db.session.add(
            FxRate(base=base, quote=quote, rate=Decimal(rate), as_of=as_of, source="demo")
        )
    for code, amount in (("INR", "5000000.00"), ("USD", "50000.00"), ("EUR", "40000.00")):
        wallets.top_up_reserve(code, {"amount": amount, "memo": "Opening reserve"})
    client = Client(
        name="Rohan Kapoor",
        email="rohan.kapoor@example.com",
        branch_id=agent.branch_id,
        relationship_manager_id=agent.user_id,
    )
    db.session.add(client)
    db.session.flush()
    usd = wallets.wallet_for(client.id, "USD")
    db.session.flush()
    wallets.deposit(usd.id, {"amount": "2500.00", "memo": "Wire from Citibank NY"})
    quote = services.quote(
        {
            "client_id": client.id,
            "sell_currency": "USD",
            "buy_currency": "INR",
            "sell_amount": "500.00",
        }
    )
    services.execute(quote.id)
    db.session.add_all(
        [
            Voucher(code="AMAZON500", name="Amazon gift card ₹500", points_cost=400, stock=50),
            Voucher(code="LOUNGE", name="Airport lounge pass", points_cost=1500),
        ]
    )
    db.session.flush()
    return 1


def _demo_dashboards(rng: random.Random, agents: list, agent) -> None:
    """What the dashboards need beyond the desks' demo records: leads created over the last
    four months, some converted and some lost (funnel and conversion rates), invoices overdue
    by different ages (ageing), more currency pairs exchanged, and loans' arrears brought up
    to date."""
    from decimal import Decimal

    from app.billing import services as billing
    from app.billing.models import BillingProduct
    from app.clients.models import Client
    from app.forex import services as forex
    from app.forex import wallets
    from app.leads.conversion import convert_lead
    from app.leads.models import Lead
    from app.lending.jobs import update_arrears

    now = utcnow()
    for owner in agents:
        leads = db.session.scalars(
            select(Lead).where(Lead.assigned_agent_id == owner.user_id).order_by(Lead.id)
        ).all()
        for lead in leads:
            lead.created_at = now - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
        qualified = [lead for lead in leads if lead.status == "qualified"]
        for lead in qualified[: max(1, len(qualified) // 2)]:
            convert_lead(lead.id)
        for lead in [lead for lead in leads if lead.status == "new"][:2]:
            lead.status, lead.lost_reason = "lost", "Chose another provider"
    db.session.flush()

    today = utcnow().date()
    clients = db.session.scalars(
        select(Client).where(Client.relationship_manager_id == agent.user_id).order_by(Client.id)
    ).all()
    review = db.session.scalar(select(BillingProduct).where(BillingProduct.sku == "SVC-REVIEW"))
    if clients and review is not None:
        for number, days_late in enumerate((12, 44, 75, 120)):
            invoice = billing.create_invoice(
                {
                    "client_id": clients[number % len(clients)].id,
                    "due_date": today - timedelta(days=days_late),
                    "lines": [{"product_id": review.id, "quantity": "1"}],
                }
            )
            billing.issue_invoice(invoice.id, issue_date=today - timedelta(days=days_late + 30))

    forex_client = db.session.scalar(
        select(Client).where(Client.email == "rohan.kapoor@example.com")
    )
    if forex_client is not None:
        eur = wallets.wallet_for(forex_client.id, "EUR")
        db.session.flush()
        wallets.deposit(eur.id, {"amount": "1200.00", "memo": "Transfer from Frankfurt"})
        for sell, buy, amount in (
            ("EUR", "INR", "300.00"),
            ("USD", "EUR", "200.00"),
            ("USD", "INR", "150.00"),
        ):
            quote = forex.quote(
                {
                    "client_id": forex_client.id,
                    "sell_currency": sell,
                    "buy_currency": buy,
                    "sell_amount": Decimal(amount),
                }
            )
            forex.execute(quote.id)
    update_arrears(today)
