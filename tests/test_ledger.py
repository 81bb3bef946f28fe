"""The ledger: balanced, never-edited entries; reversals; the chart of accounts, journal and
trial balance screens, who may use them, and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.core.errors import ConflictError, FieldError
from app.extensions import db
from app.ledger import services as ledger
from app.ledger.models import Account, JournalEntry, JournalLine
from app.ledger.services import CASH, EQUITY, FEE_INCOME, LOANS_RECEIVABLE
from tests.support import count, login, make_branch, make_staff

D = Decimal


@pytest.fixture
def staff(app):
    branch = make_branch()
    people = {role: make_staff(role, branch) for role in ("Admin", "Manager", "Agent", "Auditor")}
    db.session.commit()
    return {role: profile.user.username for role, profile in people.items()}


@pytest.fixture
def pg_staff(pg_app):
    branch = make_branch()
    people = {role: make_staff(role, branch) for role in ("Admin", "Manager")}
    db.session.commit()
    return {role: profile.user.username for role, profile in people.items()}


def post(entry_date: date, memo: str, *legs) -> JournalEntry:
    entry = ledger.post(entry_date, memo, legs)
    db.session.commit()
    return entry


def funded_books() -> tuple[JournalEntry, JournalEntry]:
    """Capital paid in, then a loan disbursed with a fee charged."""
    capital = post(
        date(2026, 1, 5),
        "Capital paid in",
        ledger.debit(CASH, D("100000")),
        ledger.credit(EQUITY, D("100000")),
    )
    loan = post(
        date(2026, 2, 10),
        "Loan disbursed, fee charged",
        ledger.debit(LOANS_RECEIVABLE, D("25000")),
        ledger.credit(CASH, D("24500")),
        ledger.credit(FEE_INCOME, D("500")),
    )
    return capital, loan


def tb_row(code: str, as_of: date | None = None) -> ledger.TrialBalanceRow:
    return next(row for row in ledger.trial_balance(as_of) if row.code == code)


def refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def text(response) -> str:
    return response.get_data(as_text=True)


def flat(html: str) -> str:
    """Page text with tags removed and white space collapsed, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---- posting and immutability -------------------------------------------------------------


def test_posting_refuses_unbalanced_and_one_line_entries(app):
    with pytest.raises(FieldError, match="debits 100.00 and credits 90.00 in INR do not balance"):
        ledger.post(
            date(2026, 3, 1), "bad", [ledger.debit(CASH, D(100)), ledger.credit(EQUITY, D(90))]
        )
    with pytest.raises(FieldError, match="at least one debit and one credit"):
        ledger.post(date(2026, 3, 1), "one line", [ledger.debit(CASH, D(100))])
    with pytest.raises(FieldError, match="at least one debit and one credit"):
        ledger.post(
            date(2026, 3, 1), "zeros", [ledger.debit(CASH, D(0)), ledger.credit(EQUITY, D(0))]
        )
    db.session.commit()
    assert count(JournalEntry) == 0 and count(JournalLine) == 0


def test_lines_and_entries_cannot_be_edited_or_deleted(app):
    capital, _ = funded_books()
    line = capital.lines[0]
    line.debit = D("1.00")
    with pytest.raises(ConflictError, match="never changed or deleted"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(JournalLine, line.id))
    with pytest.raises(ConflictError, match="never changed or deleted"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(JournalEntry, capital.id))
    with pytest.raises(ConflictError):
        db.session.commit()
    db.session.rollback()
    db.session.expire_all()
    kept = db.session.get(JournalEntry, capital.id)
    assert [(ln.account.code, ln.debit, ln.credit) for ln in kept.lines] == [
        (CASH, D("100000.00"), D("0.00")),
        (EQUITY, D("0.00"), D("100000.00")),
    ]


# ---- reversal -----------------------------------------------------------------------------


def test_reversal_mirrors_the_lines_and_nets_the_balance_to_zero(app, client, staff):
    capital, loan = funded_books()
    before = {row.code: row.balance for row in ledger.trial_balance()}
    login(client, staff["Admin"])
    done = client.post(
        f"/journalview/reverse/{loan.id}",
        data={"reason": "Disbursed to the wrong account", "entry_date": "2026-02-11"},
    )
    assert done.status_code == 302
    db.session.expire_all()
    mirror = db.session.scalar(select(JournalEntry).where(JournalEntry.reverses_id == loan.id))
    assert done.headers["Location"].endswith(f"/journalview/show/{mirror.id}")
    assert mirror.entry_date == date(2026, 2, 11)
    assert mirror.memo == f"Reversal of JE-{loan.id}: Disbursed to the wrong account"
    assert [(ln.account.code, ln.debit, ln.credit) for ln in mirror.lines] == [
        (LOANS_RECEIVABLE, D("0.00"), D("25000.00")),
        (CASH, D("24500.00"), D("0.00")),
        (FEE_INCOME, D("500.00"), D("0.00")),
    ]
    after = {row.code: row.balance for row in ledger.trial_balance()}
    assert before[LOANS_RECEIVABLE] == D("25000.00") and after[LOANS_RECEIVABLE] == 0
    assert after[FEE_INCOME] == 0
    assert after[CASH] == D("100000.00")  # only the capital is left
    # Up to the day before the reversal the loan is still in the books.
    assert tb_row(LOANS_RECEIVABLE, date(2026, 2, 10)).balance == D("25000.00")

    page = client.get(f"/journalview/show/{loan.id}")
    assert f"Reversed by JE-{mirror.id}" in flat(text(page))
    assert 'id="journal-reverse"' not in text(page)
    page = client.get(f"/journalview/show/{mirror.id}")
    assert f"This entry reverses JE-{loan.id}" in flat(text(page))
    assert 'id="journal-reverse"' not in text(page)
    listing = text(client.get("/journalview/list/"))
    assert f'<a href="/journalview/show/{loan.id}">JE-{loan.id}</a>' in listing


def test_an_entry_is_reversed_once_and_a_reversal_never(app, client, staff):
    _, loan = funded_books()
    login(client, staff["Admin"])
    client.post(f"/journalview/reverse/{loan.id}", data={"reason": "Duplicate"})
    mirror_id = db.session.scalar(
        select(JournalEntry.id).where(JournalEntry.reverses_id == loan.id)
    )
    entries = count(JournalEntry)

    again = client.post(
        f"/journalview/reverse/{loan.id}", data={"reason": "Again"}, follow_redirects=True
    )
    assert f"JE-{loan.id} not reversed: this entry was already reversed by JE-{mirror_id}" in text(
        again
    )
    back = client.post(
        f"/journalview/reverse/{mirror_id}", data={"reason": "Undo"}, follow_redirects=True
    )
    assert "this entry is itself a reversal" in text(back)
    assert count(JournalEntry) == entries
    refusals = db.session.scalars(
        select(AuditLog.detail).where(
            AuditLog.action == "rejected",
            AuditLog.record_type == "journal_entry",
            AuditLog.actor_name == staff["Admin"],
        )
    ).all()
    assert len(refusals) == 2 and "already reversed" in refusals[0]


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"reason": "   "}, "Reason: say why the entry is reversed."),
        ({"reason": "Typo", "entry_date": "11/02/2026"}, "Entry date: is not a date (YYYY-MM-DD)"),
        ({"reason": "Typo", "entry_date": "2026-01-31"}, "cannot be dated before the entry"),
    ],
)
def test_a_reversal_needs_a_reason_and_a_sensible_date(app, client, staff, form, words):
    _, loan = funded_books()
    login(client, staff["Admin"])
    page = client.post(f"/journalview/reverse/{loan.id}", data=form, follow_redirects=True)
    assert page.status_code == 200 and words in text(page)
    assert count(JournalEntry) == 2
    assert db.session.scalar(
        select(AuditLog.id).where(
            AuditLog.action == "rejected",
            AuditLog.record_type == "journal_entry",
            AuditLog.actor_name == staff["Admin"],
        )
    )


def test_reversing_an_unknown_entry_is_404(app, client, staff):
    login(client, staff["Admin"])
    assert client.post("/journalview/reverse/999999", data={"reason": "x"}).status_code == 404


# ---- journal screen -----------------------------------------------------------------------


def test_journal_lists_newest_first_and_shows_lines_without_edit_or_delete(app, client, staff):
    capital, loan = funded_books()
    login(client, staff["Manager"])
    listing = flat(text(client.get("/journalview/list/")))
    assert listing.index("Loan disbursed") < listing.index("Capital paid in")
    assert f"JE-{loan.id}" in listing and "25,000.00" in listing

    shown = client.get(f"/journalview/show/{loan.id}")
    lines = flat(text(shown).split('id="journal-lines"')[1].split("</table>")[0])
    assert "1100 Loans receivable (principal) 25,000.00" in lines
    assert "1000 Cash at bank 24,500.00" in lines
    assert "4100 Loan fee income 500.00" in lines
    assert "Total 25,000.00 25,000.00" in lines
    assert 'id="journal-reverse"' not in text(shown)  # the Manager only reads

    client.get("/logout/")
    login(client, staff["Admin"])
    assert 'id="journal-reverse"' in text(client.get(f"/journalview/show/{loan.id}"))
    admin_listing = text(client.get("/journalview/list/"))
    assert f"/journalview/show/{loan.id}" in admin_listing
    assert not re.search(r"/journalview/(add|edit|delete)", admin_listing)
    for url in (f"/journalview/edit/{loan.id}", f"/journalview/delete/{loan.id}"):
        assert client.post(url).status_code == 404
    assert client.get("/journalview/add").status_code == 404
    assert count(JournalEntry) == 2


# ---- trial balance ------------------------------------------------------------------------


def test_trial_balance_totals_are_equal_and_shown(app, client, staff):
    funded_books()
    report = ledger.trial_balance_report()
    assert report.total_debit == report.total_credit == D("125000.00")
    assert report.balanced

    login(client, staff["Manager"])
    page = client.get("/trialbalance/")
    assert page.status_code == 200
    body = flat(text(page))
    assert "Balanced: debits equal credits (125,000.00)" in body
    totals = flat(
        text(page).split('id="trial-balance-totals"')[1].split(">", 1)[1].split("</tr>")[0]
    )
    assert totals.split() == ["Total", "INR", "125,000.00", "125,000.00"]
    assert "1000 Cash at bank Asset INR 100,000.00 24,500.00 75,500.00 Dr" in body
    assert "4100 Loan fee income Income INR 0.00 500.00 500.00 Cr" in body

    early = flat(text(client.get("/trialbalance/?as_of=2026-01-31")))
    assert "Balanced: debits equal credits (100,000.00)" in early
    assert "1100 Loans receivable (principal) Asset INR 0.00 0.00 0.00" in early


def test_an_unbalanced_ledger_is_reported_as_such(app, client, staff):
    # Only a database edit behind the application's back could do this; the page must say so.
    funded_books()
    db.session.execute(
        JournalLine.__table__.update()
        .where(JournalLine.debit == D("100000"))
        .values(debit=D("99000"))
    )
    db.session.commit()
    login(client, staff["Admin"])
    body = flat(text(client.get("/trialbalance/")))
    assert "Out of balance: INR debits 124,000.00 and credits 125,000.00 differ by 1,000.00" in body


@pytest.mark.parametrize(
    "url", ["/trialbalance/?as_of=2026-13-01", "/trialbalance/export.csv?as_of=yesterday"]
)
def test_a_bad_as_of_date_is_a_400_naming_the_field(app, client, staff, url):
    login(client, staff["Manager"])
    response = client.get(url)
    assert response.status_code == 400
    assert "As of:" in text(response) and "YYYY-MM-DD" in text(response)


def test_csv_export_matches_the_screen_and_is_audited(app, client, staff):
    funded_books()
    login(client, staff["Auditor"])
    response = client.get("/trialbalance/export.csv?as_of=2026-12-31")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "trial-balance-2026-12-31" in response.headers["Content-Disposition"]
    assert text(response).startswith("\ufeff")  # UTF-8 byte order mark, for Excel
    rows = list(csv.reader(io.StringIO(text(response).removeprefix("\ufeff"))))
    assert rows[0] == [
        "code",
        "account",
        "class",
        "currency",
        "debit",
        "credit",
        "balance (debit +)",
    ]
    by_code = {row[0]: row for row in rows[1:-1]}
    assert by_code[CASH] == [
        CASH,
        "Cash at bank",
        "asset",
        "INR",
        "100000.00",
        "24500.00",
        "75500.00",
    ]
    assert by_code[FEE_INCOME][4:] == ["0.00", "500.00", "-500.00"]
    assert rows[-1] == ["", "Total", "", "INR", "125000.00", "125000.00", "0.00"]
    event = db.session.scalar(
        select(AuditLog).where(AuditLog.action == "export", AuditLog.actor_name == staff["Auditor"])
    )
    assert event.record_type == "trial_balance"
    assert event.detail == (
        f"Trial balance exported as CSV, {len(rows) - 1} rows (filters: As of: 2026-12-31)"
    )


# ---- chart of accounts --------------------------------------------------------------------


def test_admin_adds_an_account_and_it_is_listed(app, client, staff):
    login(client, staff["Admin"])
    done = client.post(
        "/accountview/add",
        data={"code": "5100 ", "name": "Office rent", "account_class": "expense"},
    )
    assert done.status_code == 302
    account = db.session.scalar(select(Account).where(Account.code == "5100"))
    assert (account.name, account.account_class, account.currency, account.active) == (
        "Office rent",
        "expense",
        app.config.get("CRM_BASE_CURRENCY", "INR"),
        True,
    )
    listing = flat(text(client.get("/accountview/list/")))
    assert "5100 Office rent Expense" in listing
    assert "5100" in [row.code for row in ledger.trial_balance()]


@pytest.mark.parametrize(
    ("form", "status", "words", "audited"),
    [
        ({"code": CASH, "name": "Second cash"}, 422, "Already exists.", False),
        ({"code": f" {CASH} ", "name": "Second cash"}, 409, "Code: account 1000 already", True),
        ({"code": "51 00", "name": "Rent"}, 422, "letters, digits, dots and dashes only", True),
        ({"code": "5200", "name": "  "}, 422, "Name: is required.", True),
        ({"code": "5200", "name": "Rent\x00"}, 422, "Name: contains control characters", True),
    ],
)
def test_a_refused_account_is_a_4xx_naming_the_problem(
    app, client, staff, form, status, words, audited
):
    login(client, staff["Admin"])
    accounts = count(Account)
    response = client.post("/accountview/add", data={"account_class": "expense", **form})
    assert response.status_code == status
    assert words in text(response)
    assert 'name="code"' in text(response)  # the form is shown again
    assert count(Account) == accounts
    rejection = db.session.scalar(
        select(AuditLog.detail).where(
            AuditLog.action == "rejected",
            AuditLog.record_type == "ledger_account",
            AuditLog.actor_name == staff["Admin"],
        )
    )
    assert (rejection is not None) == audited
    if audited:
        assert words in rejection


def test_an_unknown_class_is_refused_by_the_form(app, client, staff):
    login(client, staff["Admin"])
    response = client.post(
        "/accountview/add", data={"code": "5300", "name": "Odd", "account_class": "asset-ish"}
    )
    assert response.status_code == 422 and "Not a valid choice" in text(response)
    assert db.session.scalar(select(Account).where(Account.code == "5300")) is None


def test_an_account_with_postings_is_not_deleted(app, client, staff):
    login(client, staff["Admin"])
    client.post(
        "/accountview/add", data={"code": "5100", "name": "Office rent", "account_class": "expense"}
    )
    client.post(
        "/accountview/add", data={"code": "5900", "name": "Unused", "account_class": "expense"}
    )
    rent, unused = (
        db.session.scalar(select(Account.id).where(Account.code == code))
        for code in ("5100", "5900")
    )
    post(date(2026, 3, 1), "March rent", ledger.debit("5100", D(900)), ledger.credit(CASH, D(900)))

    page = client.post(f"/accountview/delete/{rent}", follow_redirects=True)
    assert "account 5100 has 1 journal line(s)" in text(page)
    cash_id = db.session.scalar(select(Account.id).where(Account.code == CASH))
    page = client.post(f"/accountview/delete/{cash_id}", follow_redirects=True)
    assert "part of the standard chart" in text(page)
    client.post(f"/accountview/delete/{unused}")
    db.session.expire_all()
    assert {a.code for a in db.session.scalars(select(Account))} >= {"5100", CASH}
    assert db.session.get(Account, unused) is None
    assert client.get(f"/accountview/edit/{rent}").status_code == 404
    chart = text(client.get("/accountview/list/"))
    assert f"/accountview/delete/{rent}" in chart and "/accountview/edit/" not in chart


# ---- who may do what ----------------------------------------------------------------------


def test_manager_and_auditor_read_but_cannot_reverse_or_add(app, client, staff):
    _, loan = funded_books()
    for role in ("Manager", "Auditor"):
        login(client, staff[role])
        for url in ("/trialbalance/", "/journalview/list/", "/accountview/list/"):
            assert client.get(url).status_code == 200, (role, url)
        reverse = client.post(f"/journalview/reverse/{loan.id}", data={"reason": "mine"})
        assert refused(reverse), (role, reverse.status_code)
        add = client.post(
            "/accountview/add", data={"code": "5400", "name": "X", "account_class": "expense"}
        )
        assert refused(add), (role, add.status_code)
        client.get("/logout/")
    assert count(JournalEntry) == 2
    assert db.session.scalar(select(Account).where(Account.code == "5400")) is None


def test_agent_is_kept_out_of_the_ledger(app, client, staff):
    _, loan = funded_books()
    login(client, staff["Agent"])
    for url in (
        "/trialbalance/",
        "/trialbalance/export.csv",
        "/journalview/list/",
        f"/journalview/show/{loan.id}",
        "/accountview/list/",
    ):
        assert refused(client.get(url)), url
    assert refused(client.post(f"/journalview/reverse/{loan.id}", data={"reason": "x"}))
    assert "Trial balance" not in text(client.get("/", follow_redirects=True))
    assert not db.session.scalar(
        select(AuditLog.id).where(
            AuditLog.action == "export", AuditLog.actor_name == staff["Agent"]
        )
    )


# ---- PostgreSQL -----------------------------------------------------------------------------


def test_reversal_and_trial_balance_on_postgres(pg_client, pg_staff):
    capital, loan = funded_books()
    login(pg_client, pg_staff["Admin"])
    done = pg_client.post(f"/journalview/reverse/{loan.id}", data={"reason": "Cancelled"})
    assert done.status_code == 302
    again = pg_client.post(
        f"/journalview/reverse/{loan.id}", data={"reason": "Twice"}, follow_redirects=True
    )
    assert "already reversed" in text(again)
    assert count(JournalEntry) == 3

    pg_client.get("/logout/")
    login(pg_client, pg_staff["Manager"])
    body = flat(text(pg_client.get("/trialbalance/")))
    assert "Balanced: debits equal credits (150,000.00)" in body
    assert "1100 Loans receivable (principal) Asset INR 25,000.00 25,000.00 0.00" in body
    assert "1000 Cash at bank Asset INR 124,500.00 24,500.00 100,000.00 Dr" in body
    assert refused(pg_client.post(f"/journalview/reverse/{capital.id}", data={"reason": "x"}))
    exported = list(csv.reader(io.StringIO(text(pg_client.get("/trialbalance/export.csv")))))
    assert exported[-1] == ["", "Total", "", "INR", "150000.00", "150000.00", "0.00"]


def test_two_people_reversing_at_once_get_one_reversal_and_a_message(
    pg_client, pg_staff, monkeypatch
):
    from app.core.types import utcnow
    from app.ledger import views

    _, loan = funded_books()
    real_reverse = ledger.reverse

    def reversed_meanwhile(entry_id, entry_date, reason):
        mirror = real_reverse(entry_id, entry_date, reason)
        # Someone else's reversal of the same entry is committed before ours.
        with db.engine.begin() as other:
            other.execute(
                JournalEntry.__table__.insert().values(
                    entry_date=entry_date,
                    memo=f"Reversal of JE-{entry_id}: theirs",
                    reverses_id=entry_id,
                    created_at=utcnow(),
                )
            )
        return mirror

    monkeypatch.setattr(views.services, "reverse", reversed_meanwhile)
    login(pg_client, pg_staff["Admin"])
    page = pg_client.post(
        f"/journalview/reverse/{loan.id}", data={"reason": "Mine"}, follow_redirects=True
    )
    assert page.status_code == 200
    assert "this entry was reversed by someone else just now" in text(page)
    memos = db.session.scalars(
        select(JournalEntry.memo).where(JournalEntry.reverses_id == loan.id)
    ).all()
    assert memos == [f"Reversal of JE-{loan.id}: theirs"]


# ---- currencies ---------------------------------------------------------------------------


def test_each_currency_balances_on_its_own_and_the_trial_balance_totals_each(app, client, staff):
    ledger.ensure_currency_accounts("USD")
    ledger.ensure_currency_accounts("USD")  # a second call adds nothing
    db.session.commit()
    usd = {code: ledger.currency_code(code, "USD") for code in ledger.CURRENCY_ACCOUNTS}
    assert usd[CASH] == "1000-USD" and ledger.currency_code(CASH, "INR") == CASH
    assert set(db.session.scalars(select(Account.code).where(Account.currency == "USD"))) == {
        "1000-USD",
        "2100-USD",
        "3100-USD",
    }

    # 100 rupees against 100 dollars adds up, but balances in neither currency.
    with pytest.raises(FieldError, match="in INR do not balance"):
        ledger.post(
            date(2026, 3, 1),
            "mixed",
            [ledger.debit(CASH, D(100)), ledger.credit(usd[ledger.CLIENT_WALLETS], D(100))],
        )
    db.session.rollback()
    assert count(JournalEntry) == 0

    funded_books()
    post(
        date(2026, 3, 2),
        "Dollar deposit",
        ledger.debit(usd[CASH], D("250.00")),
        ledger.credit(usd[ledger.CLIENT_WALLETS], D("250.00")),
    )
    report = ledger.trial_balance_report()
    assert [(t.currency, t.debit, t.credit) for t in report.currencies] == [
        ("INR", D("125000.00"), D("125000.00")),
        ("USD", D("250.00"), D("250.00")),
    ]
    assert report.balanced and report.total_debit == D("125000.00")

    login(client, staff["Manager"])
    body = flat(text(client.get("/trialbalance/")))
    assert "Balanced: debits equal credits (INR 125,000.00; USD 250.00)" in body
    assert "1000-USD Cash at bank (USD) Asset USD 250.00 0.00 250.00 Dr" in body


def test_a_currency_code_must_be_three_letters(app):
    with pytest.raises(FieldError, match="three-letter ISO code"):
        ledger.ensure_currency_accounts("usd1")
