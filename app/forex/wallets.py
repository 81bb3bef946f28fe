"""Wallets and reserves move only here, always with the journal entry that moves the money.

Postings (each balances in its currency; accounts per currency, see ``app.ledger.services``):

- deposit:    Dr cash-c / Cr client wallets-c
- withdrawal: Dr client wallets-c / Cr cash-c (never beyond the wallet's balance)
- reserve top-up: Dr cash-c / Cr forex reserve-c

``move_wallet`` is the one function that changes ``Wallet.balance``: it links the journal line
(``WalletPosting``) and adjusts the cached balance in the caller's transaction.
``ledger_balance`` recomputes a wallet from its linked lines, to show the two agree.

Rows are locked in one order everywhere (wallets by id, then reserves by id) so two
exchanges never wait on each other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.core.errors import ConflictError, FieldError, NotFound
from app.core.types import utcnow
from app.core.validators import clean_text, parse_money
from app.extensions import db
from app.forex.models import Currency, Reserve, Wallet, WalletPosting
from app.ledger import services as ledger
from app.ledger.models import Account, JournalEntry, JournalLine
from app.security.scoping import UNSCOPED

ZERO = Decimal("0.00")


def today() -> date:
    return utcnow().date()


def active_currency(code: object, field: str = "currency") -> Currency:
    code = (clean_text(str(code or ""), field, 40, required=True) or "").upper()
    currency = db.session.scalars(
        select(Currency).where(Currency.code == code), execution_options=UNSCOPED
    ).first()
    if currency is None or not currency.active:
        raise FieldError(f"{code[:10]} is not a currency the desk deals in.", field)
    return currency


def wallet_for(client_id: int, currency: str, create: bool = True) -> Wallet | None:
    """The client's wallet in ``currency``; made (empty) when missing and ``create``. Two
    requests making it at once: the savepoint lets the loser take the winner's row."""
    query = select(Wallet).where(Wallet.client_id == client_id, Wallet.currency == currency)
    wallet = db.session.scalars(query).first()
    if wallet is not None or not create:
        return wallet
    try:
        with db.session.begin_nested():
            wallet = Wallet(client_id=client_id, currency=currency, balance=ZERO)
            db.session.add(wallet)
    except IntegrityError:
        wallet = db.session.scalars(query).one()
    return wallet


def reserve_for(currency: str) -> Reserve:
    query = select(Reserve).where(Reserve.currency == currency)
    reserve = db.session.scalars(query, execution_options=UNSCOPED).first()
    if reserve is not None:
        return reserve
    try:
        with db.session.begin_nested():
            reserve = Reserve(currency=currency, balance=ZERO)
            db.session.add(reserve)
    except IntegrityError:
        reserve = db.session.scalars(query, execution_options=UNSCOPED).one()
    return reserve


def lock_rows(wallets: Iterable[Wallet], reserves: Iterable[Reserve]) -> None:
    """Lock the rows (``FOR UPDATE`` on PostgreSQL) in the one fixed order, and re-read them
    so their balances are what the last committed transaction left."""
    wallet_ids = sorted({w.id for w in wallets})
    reserve_ids = sorted({r.id for r in reserves})
    for wallet_id in wallet_ids:
        db.session.execute(
            select(Wallet)
            .where(Wallet.id == wallet_id)
            .with_for_update(of=Wallet)
            .execution_options(populate_existing=True)
        ).scalar_one()
    for reserve_id in reserve_ids:
        db.session.execute(
            select(Reserve)
            .where(Reserve.id == reserve_id)
            .with_for_update(of=Reserve)
            .execution_options(populate_existing=True, **UNSCOPED)
        ).scalar_one()


def prepare_wallet(wallet: Wallet) -> Wallet:
    """A wallet opened on the screen: a client, an active currency, one wallet per client and
    currency, and an empty balance (money arrives only by a posted deposit)."""
    if wallet.client is None and wallet.client_id is None:
        raise FieldError("is required.", "client")
    active_currency(wallet.currency)
    client_id = wallet.client_id or wallet.client.id
    clash = db.session.scalar(
        select(Wallet.id).where(Wallet.client_id == client_id, Wallet.currency == wallet.currency)
    )
    if clash is not None:
        raise ConflictError(f"the client already has a {wallet.currency} wallet.", "currency")
    wallet.balance = ZERO
    return wallet


def move_wallet(wallet: Wallet, line: JournalLine, amount: Decimal) -> None:
    """The only change of a wallet's balance: ``amount`` in (+) or out (-), linked to the
    journal line that records it. The wallet row must be locked by the caller."""
    db.session.add(WalletPosting(journal_line_id=line.id, wallet_id=wallet.id, amount=amount))
    wallet.balance = wallet.balance + amount


def move_reserve(reserve: Reserve, amount: Decimal) -> None:
    """The only change of a reserve's balance, beside the entry that posts to its account."""
    reserve.balance = reserve.balance + amount


def require_cover(
    wallet: Wallet | None, currency: str, amount: Decimal, field: str = "amount"
) -> None:
    """Refuse taking ``amount`` out of a wallet (None: the client has none yet) that holds less.
    The wallet row must be locked by the caller."""
    held = wallet.balance if wallet is not None else Decimal("0.00")
    if held < amount:
        raise FieldError(f"wallet {currency} holds {held:,.2f}, less than {amount:,.2f}.", field)


def _entry_lines(entry: JournalEntry) -> list[JournalLine]:
    db.session.flush()
    return list(entry.lines)


def _get_wallet(wallet_id: int) -> Wallet:
    wallet = db.session.get(Wallet, wallet_id)
    if wallet is None:
        raise NotFound("no such wallet.")
    return wallet


def deposit(wallet_id: int, data: dict) -> Wallet:
    """Money the client hands in: Dr cash / Cr client wallets, in the wallet's currency."""
    wallet = _get_wallet(wallet_id)
    amount = parse_money(data.get("amount"), "amount")
    memo = clean_text(data.get("memo"), "memo", 200) or "Deposit"
    lock_rows([wallet], [])
    c = wallet.currency
    entry = ledger.post(
        today(),
        f"{memo}: {wallet.client.name} {c} wallet",
        [
            ledger.debit(ledger.currency_code(ledger.CASH, c), amount),
            ledger.credit(ledger.currency_code(ledger.CLIENT_WALLETS, c), amount),
        ],
        wallet,
    )
    move_wallet(wallet, _entry_lines(entry)[1], amount)
    return wallet


def withdraw(wallet_id: int, data: dict) -> Wallet:
    """Money paid out to the client: Dr client wallets / Cr cash; never beyond the balance."""
    wallet = _get_wallet(wallet_id)
    amount = parse_money(data.get("amount"), "amount")
    memo = clean_text(data.get("memo"), "memo", 200) or "Withdrawal"
    lock_rows([wallet], [])
    require_cover(wallet, wallet.currency, amount)
    c = wallet.currency
    entry = ledger.post(
        today(),
        f"{memo}: {wallet.client.name} {c} wallet",
        [
            ledger.debit(ledger.currency_code(ledger.CLIENT_WALLETS, c), amount),
            ledger.credit(ledger.currency_code(ledger.CASH, c), amount),
        ],
        wallet,
    )
    move_wallet(wallet, _entry_lines(entry)[0], -amount)
    return wallet


def top_up_reserve(code: str, data: dict) -> Reserve:
    """The desk puts its own money into a currency: Dr cash-c / Cr forex reserve-c."""
    currency = active_currency(code)
    amount = parse_money(data.get("amount"), "amount")
    memo = clean_text(data.get("memo"), "memo", 200) or "Reserve top-up"
    reserve = reserve_for(currency.code)
    lock_rows([], [reserve])
    c = currency.code
    ledger.post(
        today(),
        f"{memo}: {c} reserve",
        [
            ledger.debit(ledger.currency_code(ledger.CASH, c), amount),
            ledger.credit(ledger.currency_code(ledger.FX_RESERVE, c), amount),
        ],
        reserve,
    )
    move_reserve(reserve, amount)
    return reserve


def ledger_balance(wallet: Wallet) -> Decimal:
    """The wallet's balance computed from the journal lines linked to it (credits less
    debits: a wallet is money the desk owes the client)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(JournalLine.credit - JournalLine.debit), 0))
        .join(WalletPosting, WalletPosting.journal_line_id == JournalLine.id)
        .where(WalletPosting.wallet_id == wallet.id),
        execution_options=UNSCOPED,
    )
    return ledger.money(total)


def reserve_ledger_balance(currency: str) -> Decimal:
    """The credit balance of the currency's forex reserve account."""
    code = ledger.currency_code(ledger.FX_RESERVE, currency)
    total = db.session.scalar(
        select(func.coalesce(func.sum(JournalLine.credit - JournalLine.debit), 0))
        .join(Account, Account.id == JournalLine.account_id)
        .where(Account.code == code),
        execution_options=UNSCOPED,
    )
    return ledger.money(total)


def prepare_currency(currency: Currency) -> Currency:
    """A new currency: a unique three-letter code and a name; opens its accounts and reserve."""
    code = (clean_text(currency.code, "code", 3, required=True) or "").upper()
    if not ledger.CURRENCY.fullmatch(code):
        raise FieldError("must be a three-letter ISO code such as USD.", "code")
    clash = db.session.scalar(
        select(Currency.id).where(Currency.code == code, Currency.id != (currency.id or 0)),
        execution_options=UNSCOPED,
    )
    if clash is not None:
        raise ConflictError(f"currency {code} already exists.", "code")
    currency.code = code
    currency.name = clean_text(currency.name, "name", 60, required=True)
    currency.minor_units = 2
    if currency.active is None:
        currency.active = True
    ledger.ensure_currency_accounts(code)
    return currency


def add_currency(code: str, name: str) -> Currency:
    currency = prepare_currency(Currency(code=code, name=name))
    db.session.add(currency)
    db.session.flush()
    reserve_for(currency.code)
    return currency


def base_currency() -> str:
    return current_app.config.get("CRM_BASE_CURRENCY", "INR")
