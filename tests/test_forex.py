"""The forex desk: quotes priced by hand, executions posted to the ledger in one entry,
wallets and reserves that always equal their ledger balances, and every refusal answered
clearly with nothing written."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.core.errors import ConflictError, FieldError
from app.core.types import utcnow
from app.extensions import db
from app.forex import services, wallets
from app.forex.models import FxExchange, Reserve, Wallet, WalletPosting
from app.ledger import services as ledger
from app.ledger.models import JournalEntry, JournalLine
from tests.forex_support import (
    desk,
    fund,
    make_currencies,
    make_fx_client,
    make_rate,
    top_up,
)
from tests.support import api_token, count, login, make_branch, make_staff

D = Decimal


@pytest.fixture
def agent(app):
    return make_staff("Agent", make_branch())


@pytest.fixture
def client_(agent):
    return desk(agent)


def usd_wallet(client) -> Wallet:
    return wallets.wallet_for(client.id, "USD", create=False)


def wallet_of(client, currency) -> Wallet | None:
    db.session.expire_all()
    return wallets.wallet_for(client.id, currency, create=False)


def reserve(currency: str) -> Decimal:
    db.session.expire_all()
    return db.session.scalars(select(Reserve).where(Reserve.currency == currency)).one().balance


def quote(client, sell="USD", buy="EUR", amount="100.00") -> FxExchange:
    exchange = services.quote(
        {"client_id": client.id, "sell_currency": sell, "buy_currency": buy, "sell_amount": amount}
    )
    db.session.commit()
    return exchange


def written() -> tuple[int, ...]:
    return tuple(count(m) for m in (JournalEntry, JournalLine, WalletPosting))


def test_a_quote_is_the_mid_rate_less_the_spread_rounded_down(client_):
    # mid 0.92 USD->EUR, spread 50 bps: 0.92 * 0.995 = 0.9154; 100.00 USD buys 91.54 EUR.
    exchange = quote(client_)
    assert (exchange.mid_rate, exchange.spread_bps, exchange.client_rate) == (
        D("0.92"),
        50,
        D("0.9154"),
    )
    assert exchange.buy_amount == D("91.54")
    assert exchange.status == "quoted" and exchange.state == "quoted"
    expires_in = exchange.quote_expires_at - utcnow()
    assert timedelta(seconds=55) < expires_in <= timedelta(seconds=60)
    # 33.33 USD at 0.9154 = 30.510282 -> 30.51 (the desk never pays out an unpriced fraction)
    assert quote(client_, amount="33.33").buy_amount == D("30.51")


def test_the_inverse_of_a_known_pair_is_used(client_):
    exchange = quote(client_, sell="EUR", buy="USD", amount="92.00")
    # 1 / 0.92 = 1.08695652; less 50 bps = 1.08152173 (rounded down);
    # 92.00 * 1.08152173 = 99.49999916 -> 99.49 (rounded down, never up)
    assert exchange.mid_rate == D("1.08695652")
    assert exchange.client_rate == D("1.08152173")
    assert exchange.buy_amount == D("99.49")


def test_execution_posts_one_entry_and_moves_both_wallets_and_both_reserves(client_):
    exchange = quote(client_)
    services.execute(exchange.id)
    db.session.commit()
    assert exchange.status == "executed" and exchange.executed_at is not None
    entry = db.session.get(JournalEntry, exchange.journal_entry_id)
    assert (entry.source_type, entry.source_id) == ("fx_exchange", exchange.id)
    assert sorted((ln.account.code, ln.debit, ln.credit) for ln in entry.lines) == [
        ("2100-EUR", D("0.00"), D("91.54")),
        ("2100-USD", D("100.00"), D("0.00")),
        ("3100-EUR", D("91.54"), D("0.00")),
        ("3100-USD", D("0.00"), D("100.00")),
    ]
    assert wallet_of(client_, "USD").balance == D("900.00")
    assert wallet_of(client_, "EUR").balance == D("91.54")  # made on the fly
    assert reserve("USD") == D("10100.00")
    assert reserve("EUR") == D("9908.46")
    # the spread is the desk's margin: 100 at mid would have bought 92.00
    assert (exchange.sell_amount * exchange.mid_rate - exchange.buy_amount) == D("0.46")


def test_balances_equal_the_ledger_after_many_operations(client_):
    usd = usd_wallet(client_)
    for n in range(5):
        services.execute(quote(client_, amount=f"{50 + n}.25").id)
        wallets.deposit(usd.id, {"amount": "12.34"})
        wallets.withdraw(usd.id, {"amount": "3.21"})
        db.session.commit()
    eur_back = quote(client_, sell="EUR", buy="USD", amount="40.00")
    services.execute(eur_back.id)
    top_up("EUR", "5.55")
    db.session.commit()
    db.session.expire_all()
    for wallet in db.session.scalars(select(Wallet)):
        assert wallet.balance == wallets.ledger_balance(wallet), wallet.currency
    for row in db.session.scalars(select(Reserve)):
        assert row.balance == wallets.reserve_ledger_balance(row.currency), row.currency
    assert usd_wallet(client_).balance == D("1000.00") - D("261.25") + 5 * D("9.13") + D("43.26")
    assert ledger.trial_balance_report().balanced


def test_a_wallet_that_cannot_cover_the_sale_is_refused_naming_it(client_):
    exchange = quote(client_, amount="1000.00")
    wallets.withdraw(usd_wallet(client_).id, {"amount": "960.00"})
    db.session.commit()
    before = written()
    with pytest.raises(FieldError) as refused:
        services.execute(exchange.id)
    db.session.rollback()
    assert refused.value.status == 422
    assert str(refused.value) == "Sell amount: wallet USD holds 40.00, less than 1,000.00."
    assert written() == before
    assert wallet_of(client_, "USD").balance == D("40.00")


def test_a_reserve_that_cannot_cover_the_purchase_is_refused(agent):
    make_currencies("INR", "USD", "EUR")
    make_rate("USD", "EUR", "0.92")
    top_up("EUR", "50.00")
    client = make_fx_client(agent)
    fund(client, "USD", "100.00")
    db.session.commit()
    exchange = quote(client)
    before = written()
    with pytest.raises(ConflictError) as refused:
        services.execute(exchange.id)
    db.session.rollback()
    assert refused.value.status == 409
    assert "EUR reserve holds 50.00, less than the 91.54" in str(refused.value)
    assert written() == before
    assert reserve("EUR") == D("50.00") and wallet_of(client, "USD").balance == D("100.00")


def test_an_expired_quote_and_a_second_execution_are_refused(client_, app):
    stale = quote(client_)
    stale.quote_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(ConflictError, match="expired"):
        services.execute(stale.id)
    db.session.rollback()
    fresh = quote(client_)
    services.execute(fresh.id)
    db.session.commit()
    with pytest.raises(ConflictError, match="already executed"):
        services.execute(fresh.id)
    db.session.rollback()
    assert wallet_of(client_, "USD").balance == D("900.00")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"buy_currency": "USD"}, "buy_currency"),
        ({"buy_currency": "GBP"}, "buy_currency"),
        ({"buy_currency": "INR", "sell_currency": "EUR"}, "buy_currency"),  # no EUR/INR rate
        ({"sell_amount": "0"}, "sell_amount"),
        ({"sell_amount": "-1"}, "sell_amount"),
        ({"sell_amount": "NaN"}, "sell_amount"),
        ({"sell_amount": 1e309}, "sell_amount"),
        ({"sell_amount": "1.001"}, "sell_amount"),
        ({"sell_amount": True}, "sell_amount"),
        ({"sell_amount": "0.01", "buy_currency": "EUR"}, None),  # 0.009154 EUR buys nothing
        ({"client_id": "x"}, "client_id"),
    ],
)
def test_bad_quotes_are_refused_naming_the_field(client_, change, field):
    data = {
        "client_id": client_.id,
        "sell_currency": "USD",
        "buy_currency": "EUR",
        "sell_amount": "100.00",
    }
    data.update(change)
    with pytest.raises(FieldError) as refused:
        services.quote(data)
    db.session.rollback()
    if field:
        assert refused.value.field == field
    assert count(FxExchange) == 0


def test_no_rate_names_the_pair(client_):
    with pytest.raises(FieldError, match="no rate for EUR/INR"):
        services.quote(
            {
                "client_id": client_.id,
                "sell_currency": "EUR",
                "buy_currency": "INR",
                "sell_amount": "10",
            }
        )


def test_the_latest_rate_is_current(client_):
    make_rate("USD", "EUR", "0.95", utcnow())
    db.session.commit()
    assert quote(client_).mid_rate == D("0.95")


def test_withdrawal_beyond_the_balance_is_refused(client_):
    with pytest.raises(FieldError, match="wallet USD holds 1,000.00, less than 1,000.01"):
        wallets.withdraw(usd_wallet(client_).id, {"amount": "1000.01"})


def test_trial_balance_is_zero_in_each_currency_after_a_scripted_day(agent):
    make_currencies("INR", "USD", "EUR")
    make_rate("USD", "EUR", "0.92")
    make_rate("USD", "INR", "83.00")
    make_rate("EUR", "INR", "90.20")
    for code, amount in (("INR", "500000.00"), ("USD", "20000.00"), ("EUR", "20000.00")):
        top_up(code, amount)
    clients = [make_fx_client(agent, f"Client {n}") for n in range(3)]
    for client in clients:
        fund(client, "USD", "2500.00")
        fund(client, "INR", "100000.00")
    db.session.commit()
    day = [
        ("USD", "EUR", "700.00"),
        ("INR", "USD", "41500.00"),
        ("EUR", "INR", "300.00"),
        ("USD", "INR", "125.50"),
        ("EUR", "USD", "100.00"),
    ]
    for client in clients:
        for sell, buy, amount in day:
            services.execute(quote(client, sell, buy, amount).id)
            db.session.commit()
        wallets.withdraw(wallet_of(client, "USD").id, {"amount": "10.00"})
        db.session.commit()
    report = ledger.trial_balance_report()
    assert report.balanced
    assert {t.currency for t in report.currencies} >= {"INR", "USD", "EUR"}
    assert all(t.difference == 0 for t in report.currencies)
    assert count(FxExchange) == 15
    for wallet in db.session.scalars(select(Wallet)):
        assert wallet.balance == wallets.ledger_balance(wallet) >= 0


# ---- screens and API: scoping and read-only balances ----


def test_another_agents_client_is_not_found_by_screen_or_api(client_, client, agent):
    exchange = quote(client_)
    other = make_staff("Agent", make_branch())
    db.session.commit()
    wallet_id, exchange_id = usd_wallet(client_).id, exchange.id
    token = api_token(client, other.user.username)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/wallet/{wallet_id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/fxexchange/{exchange_id}", headers=headers).status_code == 404
    answer = client.post(
        f"/api/v1/wallet/{wallet_id}/deposit", json={"amount": "5"}, headers=headers
    )
    assert answer.status_code in (403, 404)
    answer = client.post(f"/api/v1/fxexchange/{exchange_id}/execute", headers=headers)
    assert answer.status_code == 404
    login(client, other.user.username)
    assert client.get(f"/walletview/show/{wallet_id}").status_code == 404
    assert client.get(f"/fxexchangeview/show/{exchange_id}").status_code == 404
    # the owner sees them
    client = client.application.test_client()
    token = api_token(client, agent.user.username)
    answer = client.get(f"/api/v1/wallet/{wallet_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json["result"]["balance"] == "1000.00"
    login(client, agent.user.username)
    assert client.get(f"/walletview/show/{wallet_id}").status_code == 200
    assert client.get(f"/fxexchangeview/show/{exchange_id}").status_code == 200


def test_the_api_quotes_executes_and_refuses_with_json(client_, client, agent):
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_token(client, agent.user.username)}"}
    body = {"client_id": client_.id, "sell_currency": "USD", "buy_currency": "EUR"}
    answer = client.post(
        "/api/v1/fxexchange/quote", json={**body, "sell_amount": "100.00"}, headers=headers
    )
    assert answer.status_code == 201, answer.json
    assert (answer.json["client_rate"], answer.json["buy_amount"]) == ("0.91540000", "91.54")
    executed = client.post(f"/api/v1/fxexchange/{answer.json['id']}/execute", headers=headers)
    assert executed.status_code == 200 and executed.json["status"] == "executed"
    again = client.post(f"/api/v1/fxexchange/{answer.json['id']}/execute", headers=headers)
    assert again.status_code == 409
    big = client.post(
        "/api/v1/fxexchange/quote", json={**body, "sell_amount": "5000.00"}, headers=headers
    )
    refused = client.post(f"/api/v1/fxexchange/{big.json['id']}/execute", headers=headers)
    assert refused.status_code == 422
    assert refused.json["message"] == {
        "sell_amount": ["wallet USD holds 900.00, less than 5,000.00."]
    }
    bad = client.post(
        "/api/v1/fxexchange/quote", json={**body, "sell_amount": "1.001"}, headers=headers
    )
    assert bad.status_code == 422 and "sell_amount" in bad.json["message"]
    # the balance is read-only: the API has no way to write it
    wallet_id = usd_wallet(client_).id
    assert client.put(
        f"/api/v1/wallet/{wallet_id}", json={"balance": "1e6"}, headers=headers
    ).status_code in (404, 405)
    assert client.post(
        "/api/v1/wallet/",
        json={"client_id": client_.id, "currency": "EUR", "balance": "5"},
        headers=headers,
    ).status_code in (404, 405)
    assert wallet_of(client_, "USD").balance == D("900.00")


def test_exchanges_and_points_show_on_the_client_timeline(client_):
    from app.clients.timeline import client_timeline

    exchange = quote(client_)
    services.execute(exchange.id)
    db.session.commit()
    _, events = client_timeline(client_.id, {"exchange", "loyalty"}, None, 20)
    titles = [e.title for e in events]
    assert f"{exchange.reference}: sold 100.00 USD for 91.54 EUR" in titles
    assert "83 loyalty point(s) earned" in titles


def test_a_manager_opens_a_wallet_and_deposits_on_screen_but_never_edits_it(client_, client):
    manager = make_staff("Manager", client_.branch)
    db.session.commit()
    login(client, manager.user.username)
    answer = client.post("/walletview/add", data={"client": client_.id, "currency": "EUR"})
    assert answer.status_code == 302
    eur = wallet_of(client_, "EUR")
    assert eur is not None and eur.balance == D("0.00")
    again = client.post(
        "/walletview/add",
        data={"client": client_.id, "currency": "EUR"},
        follow_redirects=True,
    )
    assert "already has a EUR wallet" in again.get_data(as_text=True)
    client.post(f"/walletview/deposit/{eur.id}", data={"amount": "25.50"})
    refused = client.post(
        f"/walletview/withdraw/{eur.id}", data={"amount": "30"}, follow_redirects=True
    )
    assert "wallet EUR holds 25.50, less than 30.00" in refused.get_data(as_text=True)
    assert client.get(f"/walletview/edit/{eur.id}").status_code == 404
    assert client.post(f"/walletview/edit/{eur.id}", data={"balance": "999"}).status_code == 404
    assert wallet_of(client_, "EUR").balance == D("25.50") == wallets.ledger_balance(eur)
