"""Posting to the ledger: the only way money moves in FinCRM's books.

``post`` writes one balanced entry in the caller's transaction; ``reverse`` cancels an entry
with its mirror image. The chart of accounts is data (``CHART``), created by ``flask crm init``;
desks name accounts by code. The trial balance is one grouped query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.extensions import db
from app.ledger.models import Account, JournalEntry, JournalLine
from app.security.scoping import UNSCOPED, current_actor

CENT = Decimal("0.01")

# code -> (name, class). Codes are what the desks post to.
CASH = "1000"
LOANS_RECEIVABLE = "1100"
FEES_RECEIVABLE = "1120"
INVOICES_RECEIVABLE = "1200"
BORROWER_CREDITS = "2000"
CLIENT_WALLETS = "2100"
EQUITY = "3000"
INTEREST_INCOME = "4000"
FEE_INCOME = "4100"
SALES_INCOME = "4200"
CHART: dict[str, tuple[str, str]] = {
    CASH: ("Cash at bank", "asset"),
    LOANS_RECEIVABLE: ("Loans receivable (principal)", "asset"),
    FEES_RECEIVABLE: ("Loan fees receivable", "asset"),
    INVOICES_RECEIVABLE: ("Invoices receivable", "asset"),
    BORROWER_CREDITS: ("Borrower credit balances", "liability"),
    CLIENT_WALLETS: ("Client wallets", "liability"),
    EQUITY: ("Owner's equity", "equity"),
    INTEREST_INCOME: ("Interest income", "income"),
    FEE_INCOME: ("Loan fee income", "income"),
    SALES_INCOME: ("Sales income", "income"),
}


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
    an entry that does not balance, or has fewer than two lines, is refused."""
    legs = [leg for leg in legs if leg.amount != 0]
    if len(legs) < 2:
        raise FieldError("a journal entry needs at least one debit and one credit.", "lines")
    if sum(leg.amount for leg in legs) != 0:
        debits = sum(leg.amount for leg in legs if leg.amount > 0)
        credits = -sum(leg.amount for leg in legs if leg.amount < 0)
        raise FieldError(f"debits {debits} and credits {credits} do not balance.", "lines")
    accounts = accounts_by_code(leg.code for leg in legs)
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
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


def trial_balance(as_of: date | None = None) -> list[TrialBalanceRow]:
    """Debits and credits per account (one grouped query), up to ``as_of`` inclusive."""
    query = (
        select(
            Account.code,
            Account.name,
            Account.account_class,
            func.coalesce(func.sum(JournalLine.debit), 0),
            func.coalesce(func.sum(JournalLine.credit), 0),
        )
        .select_from(Account)
        .outerjoin(JournalLine, JournalLine.account_id == Account.id)
        .outerjoin(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .group_by(Account.code, Account.name, Account.account_class)
        .order_by(Account.code)
    )
    if as_of is not None:
        query = query.where((JournalEntry.entry_date <= as_of) | (JournalEntry.id.is_(None)))
    return [
        TrialBalanceRow(code, name, klass, money(dr), money(cr))
        for code, name, klass, dr, cr in db.session.execute(query, execution_options=UNSCOPED)
    ]


def entries_for(source: object) -> list[JournalEntry]:
    """The entries a record caused (its ledger tab), oldest first, lines loaded with them."""
    from sqlalchemy.orm import selectinload

    return list(
        db.session.scalars(
            select(JournalEntry)
            .where(
                JournalEntry.source_type == source.__tablename__,
                JournalEntry.source_id == source.id,
            )
            .options(selectinload(JournalEntry.lines).joinedload(JournalLine.account))
            .order_by(JournalEntry.id),
            execution_options=UNSCOPED,
        )
    )
