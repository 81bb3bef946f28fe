"""One scripted day across every desk on PostgreSQL: a loan disbursed and repaid, trades bought
and partly sold, an invoice issued and part paid, a wallet funded and an exchange executed. The
books must balance in every currency, each account must hold the figure worked out by hand, and
each desk's own records (positions, wallets, invoice) must agree with the ledger."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from app.billing import services as billing
from app.brokerage import services as brokerage
from app.brokerage.models import Instrument
from app.extensions import db
from app.forex import services as forex
from app.forex import wallets
from app.forex.models import Wallet
from app.ledger import services as ledger
from app.lending.servicing import record_repayment
from tests.billing_support import TODAY, issued_invoice, make_client
from tests.forex_support import desk
from tests.lending_support import make_settled_loan
from tests.support import login, make_branch, make_staff

D = Decimal


def _balances() -> dict[str, Decimal]:
    """Account code -> balance, debit positive."""
    return {row.code: row.balance for row in ledger.trial_balance()}


def test_a_day_on_every_desk_leaves_the_books_balanced_in_each_currency(pg_app, pg_client):
    branch = make_branch(tz="UTC")
    agent = make_staff("Agent", branch)
    bdm = make_staff("LoanOfficer", branch)
    admin = make_staff("Admin", branch)
    ledger.post(
        date(2026, 1, 2),
        "Capital paid in",
        [ledger.debit(ledger.CASH, D("1000000")), ledger.credit(ledger.EQUITY, D("1000000"))],
    )

    # Lending: 500,000.00 at 5.5% over 30 years, settled, first instalment paid
    # (2,838.95 = interest 2,291.67 + principal 547.28).
    loan = make_settled_loan(bdm, date(2026, 1, 31))
    record_repayment(loan, "2838.95", date(2026, 2, 28), today=date(2026, 3, 2))

    # Brokerage: buy 100 @ 10.00 (fee 10.00), buy 50 @ 13.00 (fee 5.00), sell 60 @ 15.00
    # (fee 6.00). Cash in: 1,010.00 + 655.00 - 894.00 = 771.00; clearing: -1,000.00 - 650.00
    # + 900.00 = -750.00; commission 21.00. Cost of the 60 sold: 1,665.00 / 150 x 60 = 666.00.
    client = make_client(agent, "Dev Day")
    client.risk_profile = "aggressive"
    stock = brokerage.prepare_instrument(
        Instrument(
            symbol="DAYCO", name="Day Co", kind="stock", exchange="NSE", risk_level="moderate"
        )
    )
    db.session.add(stock)
    db.session.flush()
    for side, quantity, price, fees in (
        ("buy", "100", "10.00", "10.00"),
        ("buy", "50", "13.00", "5.00"),
        ("sell", "60", "15.00", "6.00"),
    ):
        trade = brokerage.record_trade(
            {
                "client_id": client.id,
                "instrument_id": stock.id,
                "side": side,
                "quantity": quantity,
                "price": price,
                "fees": fees,
                "trade_date": TODAY,
            }
        )
        brokerage.settle_trade(trade.id, TODAY)

    # Billing: subtotal 1,015.07 + tax 180.75 = 1,195.82, of which 500.00 paid.
    invoice = issued_invoice(client)
    billing.record_payment(invoice.id, {"amount": "500.00"}, today=TODAY)

    # Forex: reserves of 10,000 USD, 10,000 EUR and 1,000,000 INR; the client deposits 1,000 USD
    # and sells 100.00 USD for EUR at 0.92 less 50 bps = 0.9154: 91.54 EUR.
    fx_client = desk(agent)
    exchange = forex.execute(
        forex.quote(
            {
                "client_id": fx_client.id,
                "sell_currency": "USD",
                "buy_currency": "EUR",
                "sell_amount": "100.00",
            }
        ).id
    )
    db.session.commit()
    assert exchange.buy_amount == D("91.54")

    report = ledger.trial_balance_report()
    assert report.balanced
    assert {total.currency: total.difference for total in report.currencies} == {
        "INR": D("0.00"),
        "USD": D("0.00"),
        "EUR": D("0.00"),
    }
    balance = _balances()
    usd = {code: ledger.currency_code(code, "USD") for code in ledger.CURRENCY_ACCOUNTS}
    eur = {code: ledger.currency_code(code, "EUR") for code in ledger.CURRENCY_ACCOUNTS}
    expected = {
        # 1,000,000 capital - 500,000 loan + 2,838.95 + 771.00 trades + 500.00 invoice
        # + 1,000,000 INR reserve top-up
        ledger.CASH: D("1504109.95"),
        ledger.LOANS_RECEIVABLE: D("499452.72"),
        ledger.INTEREST_INCOME: D("-2291.67"),
        ledger.EXCHANGE_CLEARING: D("-750.00"),
        ledger.BROKERAGE_INCOME: D("-21.00"),
        ledger.INVOICES_RECEIVABLE: D("695.82"),
        ledger.SALES_INCOME: D("-1015.07"),
        ledger.TAX_PAYABLE: D("-180.75"),
        ledger.FX_RESERVE: D("-1000000.00"),
        ledger.EQUITY: D("-1000000.00"),
        usd[ledger.CASH]: D("11000.00"),
        usd[ledger.CLIENT_WALLETS]: D("-900.00"),
        usd[ledger.FX_RESERVE]: D("-10100.00"),
        eur[ledger.CASH]: D("10000.00"),
        eur[ledger.CLIENT_WALLETS]: D("-91.54"),
        eur[ledger.FX_RESERVE]: D("-9908.46"),
    }
    assert {code: balance[code] for code in expected} == expected

    # Each desk's own records say the same as the books.
    assert brokerage.verify_positions() == []
    (holding,) = brokerage.portfolio(client.id).rows
    assert (holding.quantity, holding.cost, holding.realised_pnl) == (
        D("90"),
        D("999.00"),
        D("228.00"),
    )
    assert (invoice.status, invoice.amount_paid) == ("partially_paid", D("500.00"))
    for wallet in db.session.query(Wallet).filter(Wallet.client_id == fx_client.id):
        assert wallet.balance == wallets.ledger_balance(wallet)
    assert wallets.reserve_for("EUR").balance == D("9908.46")

    # What the accountant sees. INR debits: cash 1,000,000 + 2,838.95 + 1,010 + 655 + 500
    # + 1,000,000, loans 500,000, clearing 900, invoices 1,195.82 = 2,507,099.77; EUR: cash
    # 10,000 + reserve 91.54; USD: cash 11,000 + wallets 100.
    login(pg_client, admin.user.username)
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pg_client.get("/trialbalance/").text))
    assert "Balanced: debits equal credits (INR 2,507,099.77; EUR 10,091.54; USD 11,100.00)" in page
