"""Fill a PostgreSQL database with a bank's worth of FinCRM data for `make bench`.

Creates the database named by ``BENCH_DATABASE_URL`` (default
postgresql://postgres@127.0.0.1:5432/fincrm_bench), applies the migrations, syncs the roles and
the chart of accounts, creates branches, staff who can sign in (password ``BENCH_PASSWORD``,
hashed once) and loan products through the application's own code, then fills the large tables
with set-based SQL (``INSERT ... SELECT ... FROM generate_series``):

- 1,000,000 leads, 200,000 clients (some converted from leads) with 400,000 interactions;
- 2,500,000 balanced journal entries of two lines each (5,000,000 ledger lines);
- 100,000 loan applications with a borrower each, their stage, notes with reminders, and for
  settled and closed loans the repayment schedule (about 3,000,000 instalments, paid, late or
  still to come);
- 100,000 tasks, and follow-up times on open leads.

Values are spread the way a real book is: statuses, sources, scores, segments, created over
three years, names from short lists combined with numbers in e-mails and phones, so a search for
a name fragment or a phone number finds rows. Pseudo-random choices come from ``hashint8`` of the
row number, so the data is the same every run (dates are relative to the day it was built).

The database's comment records the generator version; a second run with the same version says
so and skips. ``BENCH_REBUILD=1`` drops and rebuilds it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VERSION = "fincrm-bench-data v2"
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fincrm_bench"
)
PASSWORD = os.environ.get("BENCH_PASSWORD", "Bench-Pass-2026!")

LEADS = 1_000_000
CLIENTS = 200_000
INTERACTIONS = 400_000
JOURNAL_ENTRIES = 2_500_000  # two lines each
APPLICATIONS = 100_000
NOTES = 30_000
TASKS = 100_000

BRANCHES = (
    ("BLR", "Bengaluru", "Asia/Kolkata"),
    ("MUM", "Mumbai", "Asia/Kolkata"),
    ("DEL", "New Delhi", "Asia/Kolkata"),
    ("CHE", "Chennai", "Asia/Kolkata"),
    ("SYD", "Sydney", "Australia/Sydney"),
    ("MEL", "Melbourne", "Australia/Melbourne"),
)
AGENTS_PER_BRANCH = 25
BDMS_PER_BRANCH = 5
BROKERS_PER_BRANCH = 5

FIRST_NAMES = (
    "Aarav Vivaan Aditya Vihaan Arjun Sai Reyansh Ayaan Krishna Ishaan Ananya Diya Aadhya Saanvi "
    "Pari Anika Navya Myra Sara Ira Oliver Noah Jack William Leo Charlotte Amelia Isla Olivia Mia "
    "Priya Rahul Neha Rohan Kavya Meera Vikram Sneha Karan Pooja"
).split()
LAST_NAMES = (
    "Sharma Verma Gupta Iyer Nair Reddy Patel Shah Mehta Joshi Kapoor Malhotra Rao Menon Pillai "
    "Das Bose Sen Chatterjee Banerjee Singh Kumar Agarwal Bhatia Chopra Desai Kulkarni Naidu "
    "Smith Jones Williams Brown Wilson Taylor Nguyen Martin Anderson Thompson White Clarke Walker "
    "Hall Young King Wright Lee Green Baker Khan"
).split()


def _admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


@contextmanager
def step(name: str):
    started = time.perf_counter()
    print(f"{name} ...", end=" ", flush=True)
    yield
    print(f"{time.perf_counter() - started:6.1f} s", flush=True)


def _filled(admin, name: str) -> bool:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        )
        row = cur.fetchone()
    return row is not None and row[0] == VERSION


def _recreate(admin, name: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')


# ---- the part written through the application: schema, roles, staff, products --------------


def bench_settings(url: str, **extra: object) -> type:
    """The app's settings on the bench database ``url``: no Redis (jobs inline), no in-process
    scheduler, files under a throw-away directory; ``extra`` overrides more."""
    import config

    return type(
        "BenchSettings",
        (config.Config,),
        {
            "SQLALCHEMY_DATABASE_URI": config.database_url(url),
            "REDIS_URL": None,
            "CRM_INPROCESS_SCHEDULER": False,
            "STORAGE_LOCAL_ROOT": tempfile.mkdtemp(prefix="fincrm-bench-"),
            **extra,
        },
    )


def _application_setup(url: str) -> None:
    from app import create_app
    from app.extensions import appbuilder, db

    app = create_app(bench_settings(url))
    with app.app_context():
        from flask_migrate import upgrade

        from app.ledger.services import seed_chart
        from app.security.sync import sync_roles

        with step("schema (migrations), roles, chart of accounts"):
            upgrade()
            sync_roles(appbuilder())
            seed_chart()
            db.session.commit()
        with step("branches, staff and loan products"):
            _staff_and_products()
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _staff_and_products() -> None:
    from decimal import Decimal

    from werkzeug.security import generate_password_hash

    from app.extensions import appbuilder, db
    from app.lending.models import Broker, LoanProduct, LoanProductFee
    from app.org.models import Branch, StaffProfile
    from app.org.services import prepare_branch

    sm = appbuilder().sm
    hashed = generate_password_hash(PASSWORD)  # once: every bench login shares it
    roles = {name: sm.find_role(name) for name in ("Admin", "Manager", "Agent", "LoanOfficer")}
    roles["Broker"] = sm.find_role("Broker")

    def user(username: str, role: str, first: str, last: str):
        made = sm.add_user(
            username,
            first,
            last,
            f"{username}@bench.example",
            [roles[role]],
            hashed_password=hashed,
        )
        if not made:
            raise SystemExit(f"could not create {username}")
        return made

    admin = user("bench.admin", "Admin", "Bench", "Admin")
    for number, (code, name, tz) in enumerate(BRANCHES):
        branch = prepare_branch(Branch(code=code, name=name, timezone=tz, address=f"{name} office"))
        db.session.add(branch)
        db.session.flush()
        low = code.lower()
        manager = user(f"manager.{low}", "Manager", "Manager", name)
        db.session.add(StaffProfile(user=manager, branch=branch, title="Branch manager"))
        for i in range(1, AGENTS_PER_BRANCH + 1):
            agent = user(
                f"agent.{low}.{i:02d}",
                "Agent",
                FIRST_NAMES[(number * 7 + i) % len(FIRST_NAMES)],
                LAST_NAMES[(number * 11 + i) % len(LAST_NAMES)],
            )
            db.session.add(
                StaffProfile(user=agent, branch=branch, title="Agent", manager_id=manager.id)
            )
        bdms = []
        for i in range(1, BDMS_PER_BRANCH + 1):
            bdm = user(f"bdm.{low}.{i:02d}", "LoanOfficer", "BDM", f"{name} {i}")
            bdms.append(bdm)
            db.session.add(
                StaffProfile(user=bdm, branch=branch, title="BDM", manager_id=manager.id)
            )
        for i in range(1, BROKERS_PER_BRANCH + 1):
            login = user(f"broker.{low}.{i:02d}", "Broker", "Broker", f"{name} {i}")
            db.session.add(StaffProfile(user=login, branch=branch, title="Broker"))
            broker = Broker(
                company=f"{name} Mortgage Brokers {i}",
                contact_name=f"Broker {name} {i}",
                email=f"broker.{low}.{i:02d}@bench.example",
                branch=branch,
                user_id=login.id,
            )
            broker.bdms.append(bdms[i - 1])
            db.session.add(broker)
    db.session.flush()
    for name, loan_type, rates, terms, amounts, fee in (
        ("Home loan", "residential", ("4.5", "9.5"), (60, 360), ("50000", "3000000"), "600"),
        (
            "Commercial property",
            "commercial",
            ("6.0", "12.0"),
            (12, 240),
            ("100000", "5000000"),
            "1500",
        ),
        ("Personal loan", "personal", ("9.0", "18.0"), (6, 84), ("5000", "200000"), "150"),
        ("Business term loan", "business", ("6.0", "18.0"), (6, 120), ("20000", "2000000"), "900"),
    ):
        product = LoanProduct(
            name=name,
            loan_type=loan_type,
            min_rate=Decimal(rates[0]),
            max_rate=Decimal(rates[1]),
            min_term_months=terms[0],
            max_term_months=terms[1],
            min_amount=Decimal(amounts[0]),
            max_amount=Decimal(amounts[1]),
        )
        product.fee_templates.append(LoanProductFee(fee_type="application", amount=Decimal(fee)))
        db.session.add(product)
    db.session.flush()
    print(f"({admin.username} + {len(BRANCHES)} branches of staff)", end=" ")


# ---- the large tables: set-based SQL ---------------------------------------------------------

H = "(hashint8({}) & 1073741823)"
"""A deterministic pseudo-random non-negative integer of an expression."""


def h(expr: str, salt: int) -> str:
    return H.format(f"({expr})::bigint * 7919 + {salt}")


def _lists(cur) -> None:
    cur.execute("CREATE TEMP TABLE first_names (idx int PRIMARY KEY, name text)")
    cur.execute("CREATE TEMP TABLE last_names (idx int PRIMARY KEY, name text)")
    cur.executemany("INSERT INTO first_names VALUES (%s, %s)", list(enumerate(FIRST_NAMES)))
    cur.executemany("INSERT INTO last_names VALUES (%s, %s)", list(enumerate(LAST_NAMES)))
    for table, title in (("agents", "Agent"), ("bdms", "BDM")):
        cur.execute(
            f"""
            CREATE TEMP TABLE {table} AS
            SELECT (row_number() OVER (ORDER BY p.user_id) - 1)::int AS idx,
                   p.user_id, p.branch_id
            FROM staff_profile p WHERE p.title = %s
            """,
            (title,),
        )
    cur.execute(
        """
        CREATE TEMP TABLE bdm_brokers AS
        SELECT b.idx, b.user_id, b.branch_id, bb.broker_id
        FROM bdms b LEFT JOIN broker_bdm bb ON bb.user_id = b.user_id
        """
    )
    cur.execute("ANALYZE first_names; ANALYZE last_names; ANALYZE agents; ANALYZE bdm_brokers")


def _count(cur, table: str) -> int:
    cur.execute(f"SELECT count(*) FROM {table}")
    return cur.fetchone()[0]


def _leads(cur) -> None:
    nf, nl = len(FIRST_NAMES), len(LAST_NAMES)
    cur.execute("SELECT count(*) FROM agents")
    na = cur.fetchone()[0]
    cur.execute(
        f"""
        INSERT INTO lead (first_name, last_name, email, phone, company, source, status,
            lost_reason, score, investment_capacity, assigned_agent_id, branch_id, notes,
            created_at, updated_at)
        SELECT f.name, l.name,
            lower(f.name) || '.' || lower(l.name) || g || '@example.com',
            '+9198' || lpad(g::text, 8, '0'),
            CASE WHEN {h("g", 3)} % 3 = 0 THEN l.name || ' Traders ' || ({h("g", 4)} % 500) END,
            (ARRAY['web_form','manual','import','referral','campaign','api'])[1 + {h("g", 5)} % 6],
            s.status,
            CASE WHEN s.status = 'lost' THEN
                (ARRAY['No longer interested','Went to a competitor','Could not reach',
                       'Not eligible'])[1 + {h("g", 6)} % 4] END,
            {h("g", 7)} % 101,
            (ARRAY['under_100k','100k_1m','1m_10m','over_10m',NULL])[1 + {h("g", 8)} % 5],
            a.user_id, a.branch_id,
            CASE WHEN {h("g", 9)} % 10 = 0 THEN 'Asked for a call back about investments' END,
            c.created_at, least(now(), c.created_at + interval '1 day' * ({h("g", 10)} % 30))
        FROM generate_series(1, {LEADS}) AS g
        JOIN first_names f ON f.idx = {h("g", 1)} % {nf}
        JOIN last_names l ON l.idx = {h("g", 2)} % {nl}
        JOIN agents a ON a.idx = {h("g", 11)} % {na}
        CROSS JOIN LATERAL (SELECT CASE
            WHEN {h("g", 12)} % 100 < 30 THEN 'new'
            WHEN {h("g", 12)} % 100 < 55 THEN 'contacted'
            WHEN {h("g", 12)} % 100 < 70 THEN 'qualified'
            WHEN {h("g", 12)} % 100 < 85 THEN 'converted'
            ELSE 'lost' END AS status) s
        CROSS JOIN LATERAL (SELECT now() - interval '1 second' * ({h("g", 13)} % (3 * 365 * 86400))
            AS created_at) c
        """
    )
    # Follow-ups: a tenth of open leads have one in the next 60 days; a day's worth were missed
    # since yesterday's sweep (the sweep turns those into tasks).
    cur.execute(
        f"""
        UPDATE lead SET next_follow_up_at = date_trunc('minute', now())
            + interval '1 minute' * ({h("id", 14)} % (60 * 24 * 60))
        WHERE status IN ('new','contacted','qualified') AND {h("id", 15)} % 10 = 0
        """
    )
    cur.execute(
        f"""
        UPDATE lead SET next_follow_up_at = date_trunc('minute', now())
            - interval '1 minute' * (1 + {h("id", 16)} % (24 * 60))
        WHERE status IN ('new','contacted','qualified') AND {h("id", 15)} % 1000 = 1
        """
    )


def _clients(cur) -> None:
    nf, nl = len(FIRST_NAMES), len(LAST_NAMES)
    cur.execute("SELECT count(*) FROM agents")
    na = cur.fetchone()[0]
    cur.execute(
        f"""
        INSERT INTO client (client_type, name, legal_name, email, phone, address, date_of_birth,
            investment_capacity, segment, risk_profile, risk_score, preferred_channel, status,
            kyc_status, branch_id, relationship_manager_id, created_at, updated_at)
        SELECT t.client_type,
            CASE WHEN t.client_type = 'company' THEN l.name || ' Holdings ' || g
                 ELSE f.name || ' ' || l.name END,
            CASE WHEN t.client_type = 'company' THEN l.name || ' Holdings ' || g || ' Pvt Ltd' END,
            lower(f.name) || '.' || lower(l.name) || '.c' || g || '@example.com',
            '+9197' || lpad(g::text, 8, '0'),
            g || ' MG Road',
            CASE WHEN t.client_type = 'individual'
                 THEN date '1950-01-01' + ({h("g", 24)} % 18000) END,
            cap.band,
            CASE cap.band WHEN 'under_100k' THEN 'retail' WHEN '100k_1m' THEN 'affluent'
                 WHEN '1m_10m' THEN 'hni' WHEN 'over_10m' THEN 'uhni' END,
            (ARRAY['conservative','moderate','aggressive',NULL])[1 + {h("g", 25)} % 4],
            CASE WHEN {h("g", 25)} % 4 < 3 THEN {h("g", 26)} % 101 END,
            (ARRAY['email','email','email','sms'])[1 + {h("g", 27)} % 4],
            (ARRAY['active','active','active','active','active','active','active','active',
                   'inactive','suspended'])[1 + {h("g", 28)} % 10],
            (ARRAY['verified','verified','verified','pending','rejected','expired'])
                [1 + {h("g", 29)} % 6],
            a.branch_id, a.user_id, c.created_at, c.created_at
        FROM generate_series(1, {CLIENTS}) AS g
        JOIN first_names f ON f.idx = {h("g", 21)} % {nf}
        JOIN last_names l ON l.idx = {h("g", 22)} % {nl}
        JOIN agents a ON a.idx = {h("g", 23)} % {na}
        CROSS JOIN LATERAL (SELECT CASE WHEN {h("g", 30)} % 10 = 0 THEN 'company'
            ELSE 'individual' END AS client_type) t
        CROSS JOIN LATERAL (SELECT (ARRAY['under_100k','under_100k','100k_1m','100k_1m',
            '1m_10m','over_10m',NULL])[1 + {h("g", 31)} % 7] AS band) cap
        CROSS JOIN LATERAL (SELECT now() - interval '1 second' * ({h("g", 32)} % (3 * 365 * 86400))
            AS created_at) c
        """
    )
    # Converted leads point at a client of their branch (what conversion records).
    cur.execute(
        """
        CREATE TEMP TABLE branch_clients AS
        SELECT id, branch_id, (row_number() OVER (PARTITION BY branch_id ORDER BY id) - 1)::int
               AS idx, count(*) OVER (PARTITION BY branch_id) AS n
        FROM client;
        CREATE INDEX ON branch_clients (branch_id, idx);
        ANALYZE branch_clients;
        """
    )
    cur.execute(
        f"""
        UPDATE lead SET converted_client_id = bc.id
        FROM (SELECT branch_id, max(n) AS n FROM branch_clients GROUP BY branch_id) nb,
             branch_clients bc
        WHERE lead.status = 'converted' AND nb.branch_id = lead.branch_id
          AND bc.branch_id = lead.branch_id AND bc.idx = {h("lead.id", 33)} % nb.n
        """
    )
    cur.execute(
        f"""
        INSERT INTO interaction (kind, occurred_at, outcome, body, author_id, client_id,
            created_at)
        SELECT (ARRAY['call','email','meeting','note'])[1 + {h("g", 41)} % 4],
            o.at,
            (ARRAY['Spoke to the client','Left a message','Sent the proposal',
                   'Reviewed the portfolio'])[1 + {h("g", 42)} % 4],
            'Discussed the portfolio and next steps.',
            c.relationship_manager_id, c.id, o.at
        FROM generate_series(1, {INTERACTIONS}) AS g
        JOIN client c ON c.id = (SELECT min(id) FROM client) + {h("g", 43)} % {CLIENTS}
        CROSS JOIN LATERAL (SELECT c.created_at + (now() - c.created_at)
            * ({h("g", 44)} % 1000) / 1000.0 AS at) o
        """
    )


def _ledger(cur) -> None:
    from app.ledger import services as ledger

    pairs = [
        (ledger.LOANS_RECEIVABLE, ledger.CASH, "Loan settlement"),
        (ledger.CASH, ledger.LOANS_RECEIVABLE, "Loan repayment (principal)"),
        (ledger.CASH, ledger.INTEREST_INCOME, "Loan repayment (interest)"),
        (ledger.FEES_RECEIVABLE, ledger.FEE_INCOME, "Loan fee charged"),
        (ledger.CASH, ledger.FEES_RECEIVABLE, "Loan fee paid"),
        (ledger.INVOICES_RECEIVABLE, ledger.SALES_INCOME, "Invoice issued"),
        (ledger.CASH, ledger.INVOICES_RECEIVABLE, "Invoice payment"),
        (ledger.EXCHANGE_CLEARING, ledger.BROKERAGE_INCOME, "Brokerage commission"),
        (ledger.CASH, ledger.CLIENT_WALLETS, "Wallet deposit"),
        (ledger.CLIENT_WALLETS, ledger.CASH, "Wallet withdrawal"),
    ]
    cur.execute("CREATE TEMP TABLE posting_kinds (idx int, debit int, credit int, memo text)")
    for idx, (debit, credit, memo) in enumerate(pairs):
        cur.execute(
            """
            INSERT INTO posting_kinds
            SELECT %s, d.id, c.id, %s FROM ledger_account d, ledger_account c
            WHERE d.code = %s AND c.code = %s
            """,
            (idx, memo, debit, credit),
        )
    cur.execute("SELECT count(*) FROM posting_kinds")
    if cur.fetchone()[0] != len(pairs):
        raise SystemExit("the chart of accounts lacks an account the ledger data needs")
    cur.execute("ANALYZE posting_kinds")
    cur.execute(
        f"""
        INSERT INTO journal_entry (id, entry_date, memo, source_type, source_id, created_at)
        SELECT s.id, d.day, k.memo || ' #' || s.id, NULL, NULL, d.day + time '09:00'
        FROM (SELECT nextval('journal_entry_id_seq') AS id
              FROM generate_series(1, {JOURNAL_ENTRIES})) s
        JOIN posting_kinds k ON k.idx = {h("s.id", 51)} % {len(pairs)}
        CROSS JOIN LATERAL (SELECT current_date - ({h("s.id", 52)} % 1095) AS day) d
        """
    )
    # Two lines per entry: the debit and the credit of the same amount (balanced).
    cur.execute(
        f"""
        INSERT INTO journal_line (entry_id, account_id, debit, credit)
        SELECT e.id, CASE WHEN side = 1 THEN k.debit ELSE k.credit END,
            CASE WHEN side = 1 THEN a.amount ELSE 0 END,
            CASE WHEN side = 2 THEN a.amount ELSE 0 END
        FROM journal_entry e
        JOIN posting_kinds k ON k.idx = {h("e.id", 51)} % {len(pairs)}
        CROSS JOIN LATERAL (SELECT (100 + {h("e.id", 53)} % 5000000) / 100.0 AS amount) a
        CROSS JOIN (VALUES (1), (2)) AS s(side)
        """
    )


def _lending(cur) -> None:
    cur.execute("SELECT count(*) FROM bdm_brokers")
    nb = cur.fetchone()[0]
    cur.execute("SELECT min(id), count(*) FROM client")
    first_client, n_clients = cur.fetchone()
    cur.execute(
        "CREATE TEMP TABLE products AS SELECT row_number() OVER (ORDER BY id) - 1 AS idx,"
        " * FROM loan_product"
    )
    cur.execute("SELECT count(*) FROM products")
    npr = cur.fetchone()[0]
    nf, nl = len(FIRST_NAMES), len(LAST_NAMES)
    cur.execute(
        f"""
        INSERT INTO loan_application (id, reference, amount, term_months, interest_rate, purpose,
            repayment_frequency, application_type, product_id, estimated_settlement_date,
            branch_id, bdm_id, broker_id, client_id, stage, stage_changed_at, settled_on,
            days_past_due, arrears_bucket, created_by_id, created_at, updated_at)
        SELECT s.id, 'LA-' || lpad(s.id::text, 6, '0'),
            round((p.min_amount + (p.max_amount - p.min_amount) * ({h("s.g", 61)} % 1000)
                / 4000.0) / 1000) * 1000,
            t.term, round(p.min_rate + (p.max_rate - p.min_rate) * ({h("s.g", 62)} % 100) / 100.0,
                2),
            'Bench application ' || s.g, 'monthly',
            (ARRAY['purchase','refinance','construction','equity_release','working_capital'])
                [1 + {h("s.g", 63)} % 5],
            p.id, cr.created_at::date + 45, b.branch_id, b.user_id,
            CASE WHEN {h("s.g", 64)} % 2 = 0 THEN b.broker_id END,
            CASE WHEN {h("s.g", 65)} % 2 = 0 THEN {first_client} + {h("s.g", 66)} % {n_clients} END,
            st.stage,
            CASE WHEN st.stage IN ('settled','closed') THEN st.settled_on + time '10:00'
                 WHEN st.stage IN ('declined','withdrawn') THEN cr.created_at + interval '20 days'
                 ELSE greatest(cr.created_at,
                     now() - interval '1 hour' * ({h("s.g", 67)} % (24 * 60))) END,
            CASE WHEN st.stage IN ('settled','closed') THEN st.settled_on END,
            0, 'current', b.user_id, cr.created_at, cr.created_at
        FROM (SELECT nextval('loan_application_id_seq') AS id, g
              FROM generate_series(1, {APPLICATIONS}) AS g) s
        JOIN products p ON p.idx = {h("s.g", 68)} % {npr}
        JOIN bdm_brokers b ON b.idx = {h("s.g", 69)} % {nb}
        CROSS JOIN LATERAL (SELECT (ARRAY[24, 36, 48, 60, 72, 84])[1 + {h("s.g", 70)} % 6]
            AS term) t
        CROSS JOIN LATERAL (SELECT
            CASE WHEN {h("s.g", 71)} % 100 < 57 THEN 'settled'
                 WHEN {h("s.g", 71)} % 100 < 60 THEN 'closed'
                 WHEN {h("s.g", 71)} % 100 < 66 THEN 'inquiry'
                 WHEN {h("s.g", 71)} % 100 < 74 THEN 'application'
                 WHEN {h("s.g", 71)} % 100 < 82 THEN 'assessment'
                 WHEN {h("s.g", 71)} % 100 < 88 THEN 'approved'
                 WHEN {h("s.g", 71)} % 100 < 95 THEN 'declined'
                 ELSE 'withdrawn' END AS stage,
            current_date - 1 - ({h("s.g", 72)} % 1060) AS settled_on) st
        CROSS JOIN LATERAL (SELECT CASE
            WHEN st.stage IN ('inquiry','application','assessment','approved')
            THEN now() - interval '1 hour' * (24 + {h("s.g", 73)} % (24 * 120))
            ELSE now() - interval '1 hour' * (24 * 30 + {h("s.g", 73)} % (24 * 1060))
            END AS created_at) cr
        """
    )
    # A closed loan was repaid: settled long enough ago for its whole term to have passed.
    cur.execute(
        "UPDATE loan_application SET settled_on = current_date - 1 - term_months * 31"
        " - (id % 200), stage_changed_at = now() - interval '1 day' * (id % 200)"
        " WHERE stage = 'closed'"
    )
    cur.execute(
        "UPDATE loan_application SET created_at = settled_on - 45, updated_at = settled_on - 45"
        " WHERE stage IN ('settled', 'closed')"
    )
    cur.execute(
        f"""
        INSERT INTO loan_party (application_id, role, party_type, title, first_name, last_name,
            date_of_birth, marital_status, residency, employment_type, annual_income,
            monthly_expenses, email, phone, created_at)
        SELECT a.id, 'borrower', 'individual',
            (ARRAY['Mr','Ms','Mrs','Dr'])[1 + {h("a.id", 81)} % 4], f.name, l.name,
            date '1955-01-01' + ({h("a.id", 82)} % 16000),
            (ARRAY['single','married','de_facto'])[1 + {h("a.id", 83)} % 3],
            'citizen', 'full_time', 40000 + {h("a.id", 84)} % 200000,
            1000 + {h("a.id", 85)} % 6000,
            lower(f.name) || '.' || lower(l.name) || '.b' || a.id || '@example.com',
            '+9196' || lpad(a.id::text, 8, '0'), a.created_at
        FROM loan_application a
        JOIN first_names f ON f.idx = {h("a.id", 86)} % {nf}
        JOIN last_names l ON l.idx = {h("a.id", 87)} % {nl}
        """
    )
    cur.execute(
        """
        INSERT INTO loan_stage_event (application_id, occurred_at, actor_id, actor_name,
            from_stage, to_stage, note)
        SELECT id, created_at, bdm_id, 'BDM', NULL, 'inquiry', 'Application received'
        FROM loan_application
        UNION ALL
        SELECT id, stage_changed_at, bdm_id, 'BDM', 'inquiry', stage, NULL
        FROM loan_application WHERE stage <> 'inquiry'
        """
    )
    cur.execute(
        f"""
        INSERT INTO loan_note (application_id, body, remind_on, reminded_at, author_id,
            created_at)
        SELECT a.id, 'Call the borrower about the valuation #' || g, r.day,
            CASE WHEN r.day < current_date - 3 THEN r.day + time '07:00' END,
            a.bdm_id, a.created_at
        FROM generate_series(1, {NOTES}) AS g
        JOIN loan_application a ON a.id = (SELECT min(id) FROM loan_application)
            + {h("g", 91)} % {APPLICATIONS}
        CROSS JOIN LATERAL (SELECT CASE WHEN {h("g", 92)} % 2 = 0
            THEN current_date - 60 + {h("g", 93)} % 90 END AS day) r
        """
    )
    # The schedule: an annuity (see app/lending/schedule.py); interest on the balance before
    # each instalment, the last instalment takes the principal left.
    cur.execute(
        f"""
        INSERT INTO loan_instalment (application_id, number, due_date, principal, interest,
            total, paid_principal, paid_interest, status, paid_on)
        WITH loans AS (
            SELECT id, amount, term_months AS n, (interest_rate / 1200.0)::float8 AS r,
                settled_on, stage,
                ({h("id", 101)} % 100 < 9) AS in_arrears, 1 + {h("id", 102)} % 4 AS missed
            FROM loan_application WHERE stage IN ('settled', 'closed')
        ), annuity AS (
            SELECT *, round((amount * r / (1 - power(1 + r, -n)))::numeric, 2) AS a FROM loans
        ), rows AS (
            SELECT l.*, k, (l.settled_on + interval '1 month' * k)::date AS due,
                round(((l.amount * power(1 + l.r, k - 1)
                    - l.a * (power(1 + l.r, k - 1) - 1) / l.r) * l.r)::numeric, 2) AS interest
            FROM annuity l CROSS JOIN LATERAL generate_series(1, l.n) AS k
        ), split AS (
            SELECT *, CASE WHEN k < n THEN a - interest
                ELSE amount - sum(a - interest) OVER (PARTITION BY id ORDER BY k
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) END AS principal,
                count(*) FILTER (WHERE due < current_date)
                    OVER (PARTITION BY id) AS past_due
            FROM rows
        ), state AS (
            SELECT *, CASE
                WHEN stage = 'closed' THEN 'paid'
                WHEN due >= current_date THEN 'scheduled'
                WHEN in_arrears AND k > past_due - missed THEN
                    CASE WHEN due >= current_date - 1 THEN 'scheduled' ELSE 'late' END
                ELSE 'paid' END AS status
            FROM split
        )
        SELECT id, k, due, principal, greatest(interest, 0), principal + greatest(interest, 0),
            CASE WHEN status = 'paid' THEN principal ELSE 0 END,
            CASE WHEN status = 'paid' THEN greatest(interest, 0) ELSE 0 END,
            status,
            CASE WHEN status = 'paid' THEN due - ({h("id * 97 + k", 103)} % 5) END
        FROM state
        """
    )
    cur.execute(
        """
        UPDATE loan_application a SET instalment_amount = i.total
        FROM loan_instalment i WHERE i.application_id = a.id AND i.number = 1
        """
    )
    # Arrears as yesterday's run of the daily job left them.
    cur.execute(
        """
        UPDATE loan_application a SET days_past_due = d.days,
            arrears_bucket = CASE WHEN d.days <= 0 THEN 'current' WHEN d.days <= 30 THEN '1-30'
                WHEN d.days <= 60 THEN '31-60' WHEN d.days <= 90 THEN '61-90' ELSE '90+' END
        FROM (SELECT application_id, (current_date - 1) - min(due_date) AS days
              FROM loan_instalment WHERE status = 'late' GROUP BY application_id) d
        WHERE d.application_id = a.id AND a.stage = 'settled'
        """
    )


def _tasks(cur) -> None:
    cur.execute("SELECT count(*) FROM agents")
    na = cur.fetchone()[0]
    cur.execute(
        f"""
        INSERT INTO task (title, description, assignee_id, created_by_id, branch_id, due_at,
            priority, status, completed_at, created_at, updated_at)
        SELECT (ARRAY['Call back','Send the proposal','Collect KYC documents',
                      'Review the portfolio'])[1 + {h("g", 111)} % 4] || ' #' || g,
            NULL, a.user_id, a.user_id, a.branch_id, d.due,
            (ARRAY['low','normal','normal','high','urgent'])[1 + {h("g", 112)} % 5],
            st.status, CASE WHEN st.status = 'done' THEN d.due END,
            d.due - interval '3 days', d.due - interval '3 days'
        FROM generate_series(1, {TASKS}) AS g
        JOIN agents a ON a.idx = {h("g", 113)} % {na}
        CROSS JOIN LATERAL (SELECT date_trunc('minute', now())
            + interval '1 minute' * ({h("g", 114)} % (90 * 24 * 60) - 60 * 24 * 60) AS due) d
        CROSS JOIN LATERAL (SELECT CASE
            WHEN d.due < now() - interval '1 day' AND {h("g", 115)} % 10 < 8 THEN 'done'
            WHEN {h("g", 115)} % 10 = 9 THEN 'in_progress'
            WHEN {h("g", 115)} % 20 = 0 THEN 'cancelled'
            ELSE 'open' END AS status) st
        """
    )


def fill(url: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(
            "SET synchronous_commit = off; SET work_mem = '256MB';"
            " SET maintenance_work_mem = '512MB'"
        )
        _lists(cur)
        for name, part, tables in (
            ("leads", _leads, ("lead",)),
            ("clients and interactions", _clients, ("client", "interaction")),
            ("ledger", _ledger, ("journal_entry", "journal_line")),
            (
                "lending",
                _lending,
                ("loan_application", "loan_party", "loan_note", "loan_instalment"),
            ),
            ("tasks", _tasks, ("task",)),
        ):
            with step(name):
                part(cur)
                conn.commit()
            print("    " + ", ".join(f"{t}: {_count(cur, t):,}" for t in tables))
    conn.commit()
    conn.autocommit = True
    # VACUUM as well: rows loaded in bulk have no visibility map until autovacuum reaches them,
    # so an index-only scan (a deep page's keys) would still read the table; a production table
    # in steady state has been vacuumed.
    with step("VACUUM ANALYZE"), conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()


def _rebuild_summaries(url: str) -> None:
    """The rows filled by SQL above bypass the application, so its summaries are counted anew."""
    from sqlalchemy import text

    from app import create_app
    from app.dashboards.summary import rebuild
    from app.extensions import db

    app = create_app(bench_settings(url))
    with app.app_context(), step("dashboard summaries (flask crm rebuild-summaries)"):
        rebuild(db.session)
        db.session.commit()
        for table in ("summary_lead", "summary_application", "summary_instalment"):
            db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    admin_url, name = _admin_url(DATABASE_URL)
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    try:
        if _filled(admin, name) and os.environ.get("BENCH_REBUILD") != "1":
            print(
                f"{name} already holds the data of {VERSION}; skipping (BENCH_REBUILD=1 rebuilds)"
            )
            return
        started = time.perf_counter()
        _recreate(admin, name)
        _application_setup(DATABASE_URL)
        fill(DATABASE_URL)
        _rebuild_summaries(DATABASE_URL)
        with admin.cursor() as cur:
            cur.execute(f'COMMENT ON DATABASE "{name}" IS %s', (VERSION,))
        print(
            f"{name} filled in {time.perf_counter() - started:.0f} s ({VERSION}); "
            f"staff sign in with the password {PASSWORD!r} (e.g. bench.admin, manager.blr, "
            "agent.blr.01, bdm.blr.01, broker.blr.01)"
        )
    finally:
        admin.close()


if __name__ == "__main__":
    main()
