"""Simultaneous exchanges on PostgreSQL: row locks make them queue, so together they never
overdraw a wallet, and those that no longer fit are refused with the wallet's message."""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.forex import services, wallets
from app.forex.models import FxExchange, Reserve, Wallet
from app.ledger import services as ledger
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction
from tests.forex_support import (
    desk,
)
from tests.support import count, make_branch, make_staff

D = Decimal


def test_ten_exchanges_exceeding_a_wallet_leave_it_at_zero_or_above(pg_app):
    client = desk(make_staff("Agent", make_branch()))  # 1,000.00 USD in the wallet
    quote_ids = []
    for _ in range(10):
        exchange = services.quote(
            {
                "client_id": client.id,
                "sell_currency": "USD",
                "buy_currency": "EUR",
                "sell_amount": "150.00",
            }
        )
        quote_ids.append(exchange.id)
    db.session.commit()
    start = threading.Barrier(10)
    outcomes: list[tuple[str, str]] = []

    def execute(quote_id: int) -> None:
        with pg_app.app_context():
            try:
                start.wait()
                services.execute(quote_id)
                db.session.commit()
                outcomes.append(("executed", ""))
            except Exception as exc:  # noqa: BLE001  (the refusal is what is checked)
                db.session.rollback()
                outcomes.append((type(exc).__name__, str(exc)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=execute, args=(qid,)) for qid in quote_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    executed = [o for o in outcomes if o[0] == "executed"]
    refused = [o for o in outcomes if o[0] != "executed"]
    assert len(executed) == 6 and len(refused) == 4, outcomes
    for kind, message in refused:
        assert kind == "FieldError"
        assert message.startswith("Sell amount: wallet USD holds ")
        assert message.endswith(", less than 150.00.")
    db.session.expire_all()
    usd = wallets.wallet_for(client.id, "USD", create=False)
    eur = wallets.wallet_for(client.id, "EUR", create=False)
    assert usd.balance == D("100.00") == wallets.ledger_balance(usd)
    assert eur.balance == 6 * D("137.31") == wallets.ledger_balance(eur)  # 150 * 0.9154
    for reserve in db.session.scalars(select(Reserve)):
        assert reserve.balance == wallets.reserve_ledger_balance(reserve.currency)
    assert db.session.scalars(select(Reserve).where(Reserve.currency == "USD")).one().balance == (
        D("10900.00")
    )
    assert count(Wallet) == 2  # the EUR wallet was opened once, whoever came first
    assert db.session.scalar(select(db.func.count()).where(FxExchange.status == "executed")) == 6
    assert ledger.trial_balance_report().balanced
    # points: 150 USD * 83 = 12,450 INR -> 124 points each, awarded in the same transactions
    account = db.session.scalars(select(LoyaltyAccount)).one()
    assert account.points == 6 * 124 and count(LoyaltyTransaction) == 6
