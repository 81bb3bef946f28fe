"""Posting to the ledger: the only way money moves in FinCRM's books.

``post`` writes one balanced entry in the caller's transaction; ``reverse`` cancels an entry
with its mirror image. The chart of accounts is data (``CHART``), created by ``flask crm init``;
desks name accounts by code. The trial balance is one grouped query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text, parse_date
from app.extensions import db
from app.ledger.models import ACCOUNT_CLASSES, Account, JournalEntry, JournalLine
from app.security.scoping import UNSCOPED, current_actor

CENT = Decimal("0.01")

# code -> (name, class). Codes are what the desks post to.
CASH = "1000"
LOANS_RECEIVABLE = "1100"
FEES_RECEIVABLE = "1120"
INVOICES_RECEIVABLE = "1200"
EXCHANGE_CLEARING = "1300"
BORROWER_CREDITS = "2000"
CLIENT_WALLETS = "2100"
TAX_PAYABLE = "2200"
EQUITY = "3000"
FX_RESERVE = "3100"
INTEREST_INCOME = "4000"
FEE_INCOME = "4100"
SALES_INCOME = "4200"
BROKERAGE_INCOME = "4300"
CHART: dict[str, tuple[str, str]] = {
    CASH: ("Cash at bank", "asset"),
    LOANS_RECEIVABLE: ("Loans receivable (principal)", "asset"),
    FEES_RECEIVABLE: ("Loan fees receivable", "asset"),
    INVOICES_RECEIVABLE: ("Invoices receivable", "asset"),
    EXCHANGE_CLEARING: ("Exchange clearing (trades to settle with the market)", "asset"),
    BORROWER_CREDITS: ("Borrower credit balances", "liability"),
    CLIENT_WALLETS: ("Client wallets", "liability"),
    TAX_PAYABLE: ("Tax collected on invoices", "liability"),
    EQUITY: ("Owner's equity", "equity"),
    FX_RESERVE: ("Forex desk reserve", "equity"),
    INTEREST_INCOME: ("Interest income", "income"),
    FEE_INCOME: ("Loan fee income", "income"),
    SALES_INCOME: ("Sales income", "income"),
    BROKERAGE_INCOME: ("Brokerage commission income", "income"),
}
CURRENCY_ACCOUNTS = (CASH, CLIENT_WALLETS, FX_RESERVE)
"""Accounts kept once per currency: the base currency's is the chart's own code, another
currency's is the code with the currency after a dash (``2100-USD``). Each entry balances in
every currency it touches, so the books never add dollars to rupees."""
CURRENCY = re.compile(r"[A-Z]{3}")


def base_currency() -> str:
    return current_app.config.get("CRM_BASE_CURRENCY", "INR")


def seed_chart() -> int:
    """Create the accounts of ``CHART`` that do not exist yet; returns how many were made."""
    existing = set(db.session.scalars(select(Account.code), execution_options=UNSCOPED))
    missing = [code for code in CHART if code not in existing]
    for code in missing:
        name, account_class = CHART[code]
        db.session.add(
            Account(code=code, name=name, account_class=account_class, currency=base_currency())
        )
    db.session.flush()
    return len(missing)


def currency_code(code: str, currency: str) -> str:
    """The code of ``code``'s account kept in ``currency`` (see ``CURRENCY_ACCOUNTS``)."""
    if code not in CURRENCY_ACCOUNTS:
        raise ValueError(f"account {code} is kept in the base currency only")
    return code if currency == base_currency() else f"{code}-{currency}"


def ensure_currency_accounts(currency: str) -> None:
    """Create the accounts a currency needs (cash, client wallets, desk reserve) if missing.
    Safe when two requests add the same currency at once: the loser finds the winner's rows."""
    if not CURRENCY.fullmatch(currency or ""):
        raise FieldError("must be a three-letter ISO code such as USD.", "currency")
    if currency == base_currency():
        return
    wanted = {currency_code(code, currency): code for code in CURRENCY_ACCOUNTS}
    existing = set(
        db.session.scalars(
            select(Account.code).where(Account.code.in_(wanted)), execution_options=UNSCOPED
        )
    )
    for code in wanted.keys() - existing:
        name, account_class = CHART[wanted[code]]
        try:
            with db.session.begin_nested():
                db.session.add(
                    Account(
                        code=code,
                        name=f"{name} ({currency})",
                        account_class=account_class,
                        currency=currency,
                    )
                )
        except IntegrityError:
            pass  # made by a concurrent request in the meantime


ACCOUNT_CODE = re.compile(r"[0-9A-Z][0-9A-Z.-]*")


@without_autoflush
def prepare_account(account: Account) -> Account:
    """Check a new account before it is saved: a unique code of letters, digits, dots and
    dashes, a name, one of the account classes; kept in the books' currency."""
    code = clean_text(account.code, "code", 20, required=True).upper()
    if not ACCOUNT_CODE.fullmatch(code):
        raise FieldError("uses letters, digits, dots and dashes only.", "code")
    clash = db.session.scalar(
        select(Account.id).where(Account.code == code, Account.id != account.id)
        if account.id is not None
        else select(Account.id).where(Account.code == code),
        execution_options=UNSCOPED,
    )
    if clash is not None:
        raise ConflictError(f"account {code} already exists.", "code")
    account.code = code
    account.name = clean_text(account.name, "name", 120, required=True)
    if account.account_class not in ACCOUNT_CLASSES:
        raise FieldError(f"must be one of {', '.join(ACCOUNT_CLASSES)}.", "account_class")
    account.currency = base_currency()
    if account.active is None:
        account.active = True
    return account


def check_account_removable(account: Account) -> None:
    """An account can be deleted only while nothing was posted to it, and never one of the
    chart's accounts the desks post to."""
    if account.code in CHART:
        raise ConflictError(
            f"account {account.code} is part of the standard chart the desks post to; "
            "it cannot be deleted."
        )
    lines = db.session.scalar(
        select(func.count(JournalLine.id)).where(JournalLine.account_id == account.id),
        execution_options=UNSCOPED,
    )
    if lines:
        raise ConflictError(
            f"account {account.code} has {lines} journal line(s); an account with postings "
            "cannot be deleted."
        )


def accounts_by_code(codes: Iterable[str]) -> dict[str, Account]:
    codes = set(codes)
    found = {
        account.code: account
        for account in db.session.scalars(
            select(Account).where(Account.code.in_(codes)), execution_options=UNSCOPED
        )
    }
    missing = codes - set(found)
    if missing:
        raise ConflictError(
            f"the chart of accounts lacks {', '.join(sorted(missing))}; run `flask crm init`."
        )
    return found


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT)


@dataclass(frozen=True)
class Leg:
    """One line of an entry: an account code and a signed amount (+ debit, - credit)."""

    code: str
    amount: Decimal


def debit(code: str, amount: Decimal) -> Leg:
    return Leg(code, money(amount))


def credit(code: str, amount: Decimal) -> Leg:
    return Leg(code, -money(amount))


def post(
    entry_date: date,
    memo: str,
    legs: Iterable[Leg],
    source: object | None = None,
) -> JournalEntry:
    """Add a balanced journal entry to the session (the caller commits). Zero legs are dropped;
    an entry that does not balance in each currency it touches, or has fewer than two lines, is
    refused."""
    legs = [leg for leg in legs if leg.amount != 0]
    if len(legs) < 2:
        raise FieldError("a journal entry needs at least one debit and one credit.", "lines")
    accounts = accounts_by_code(leg.code for leg in legs)
    for currency in sorted({accounts[leg.code].currency for leg in legs}):
        amounts = [leg.amount for leg in legs if accounts[leg.code].currency == currency]
        if sum(amounts) != 0:
            debits = sum(amount for amount in amounts if amount > 0)
            credits = -sum(amount for amount in amounts if amount < 0)
            raise FieldError(
                f"debits {debits} and credits {credits} in {currency} do not balance.", "lines"
            )
    actor = current_actor()
    entry = JournalEntry(
        entry_date=entry_date,
        memo=memo[:300],
        source_type=getattr(source, "__tablename__", None),
        source_id=getattr(source, "id", None),
        created_by_id=actor.user_id if actor else None,
        created_at=utcnow(),
    )
    entry.lines = [
        JournalLine(
            account=accounts[leg.code],
            debit=leg.amount if leg.amount > 0 else Decimal("0.00"),
            credit=-leg.amount if leg.amount < 0 else Decimal("0.00"),
        )
        for leg in legs
    ]
    db.session.add(entry)
    return entry


def reverse(entry_id: int, entry_date: date, reason: str) -> JournalEntry:
    """Cancel an entry with its mirror image; an entry is reversed once, a reversal never."""
    entry = db.session.get(JournalEntry, entry_id)
    if entry is None:
        raise NotFound("no such journal entry.")
    if entry.reverses_id is not None:
        raise ConflictError("this entry is itself a reversal; post a new entry instead.")
    already = db.session.scalar(select(JournalEntry.id).where(JournalEntry.reverses_id == entry.id))
    if already is not None:
        raise ConflictError(f"this entry was already reversed by JE-{already}.")
    reason = (reason or "").strip()
    if not reason:
        raise FieldError("say why the entry is reversed.", "reason")
    if entry_date < entry.entry_date:
        raise FieldError(
            f"a reversal cannot be dated before the entry it reverses ({entry.entry_date}).",
            "entry_date",
        )
    mirror = post(
        entry_date,
        f"Reversal of JE-{entry.id}: {reason}",
        [Leg(line.account.code, line.credit - line.debit) for line in entry.lines],
        None,
    )
    mirror.source_type, mirror.source_id = entry.source_type, entry.source_id
    mirror.reverses_id = entry.id
    return mirror


@dataclass(frozen=True)
class TrialBalanceRow:
    code: str
    name: str
    account_class: str
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


def trial_balance(as_of: date | None = None) -> list[TrialBalanceRow]:
    """Debits and credits per account (one grouped query), up to ``as_of`` inclusive. Every
    account has a row, also one whose only postings are dated after ``as_of``."""
    lines = select(JournalLine.account_id, JournalLine.debit, JournalLine.credit)
    if as_of is not None:
        lines = lines.join(JournalEntry, JournalEntry.id == JournalLine.entry_id).where(
            JournalEntry.entry_date <= as_of
        )
    lines = lines.subquery()
    query = (
        select(
            Account.code,
            Account.name,
            Account.account_class,
            Account.currency,
            func.coalesce(func.sum(lines.c.debit), 0),
            func.coalesce(func.sum(lines.c.credit), 0),
        )
        .select_from(Account)
        .outerjoin(lines, lines.c.account_id == Account.id)
        .group_by(Account.code, Account.name, Account.account_class, Account.currency)
        .order_by(Account.code)
    )
    return [
        TrialBalanceRow(code, name, klass, currency, money(dr), money(cr))
        for code, name, klass, currency, dr, cr in db.session.execute(
            query, execution_options=UNSCOPED
        )
    ]


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def difference(self) -> Decimal:
        return self.debit - self.credit


@dataclass(frozen=True)
class TrialBalance:
    """The trial balance, totalled per currency: the books balance when every currency does.
    ``total_debit``/``total_credit`` are the base currency's."""

    as_of: date | None
    rows: list[TrialBalanceRow]
    base: str = "INR"

    @property
    def currencies(self) -> list[CurrencyTotal]:
        """The base currency first, then the others that have accounts, alphabetically."""
        names = sorted({row.currency for row in self.rows} | {self.base})
        names.sort(key=lambda name: name != self.base)
        return [
            CurrencyTotal(
                name,
                sum((row.debit for row in self.rows if row.currency == name), Decimal("0.00")),
                sum((row.credit for row in self.rows if row.currency == name), Decimal("0.00")),
            )
            for name in names
        ]

    @property
    def total_debit(self) -> Decimal:
        return self.currencies[0].debit

    @property
    def total_credit(self) -> Decimal:
        return self.currencies[0].credit

    @property
    def difference(self) -> Decimal:
        return self.total_debit - self.total_credit

    @property
    def balanced(self) -> bool:
        return all(total.difference == 0 for total in self.currencies)


def parse_as_of(raw: str | None) -> date | None:
    """The trial balance's ``as_of`` filter: empty for everything, else a YYYY-MM-DD date."""
    return parse_date(raw, "as_of")


def trial_balance_report(as_of: date | None = None) -> TrialBalance:
    return TrialBalance(as_of, trial_balance(as_of), base_currency())


def entries_for(*sources: object) -> list[JournalEntry]:
    """The entries the records caused (their ledger tab), oldest first, with their lines and
    accounts: one statement whatever the number of records and entries."""
    from sqlalchemy.orm import joinedload

    if not sources:
        return []
    ids_by_table: dict[str, list[int]] = {}
    for source in sources:
        ids_by_table.setdefault(source.__tablename__, []).append(source.id)
    caused = or_(
        *(
            and_(JournalEntry.source_type == table, JournalEntry.source_id.in_(ids))
            for table, ids in ids_by_table.items()
        )
    )
    return list(
        db.session.scalars(
            select(JournalEntry)
            .where(caused)
            .options(joinedload(JournalEntry.lines).joinedload(JournalLine.account))
            .order_by(JournalEntry.id),
            execution_options=UNSCOPED,
        ).unique()
    )
