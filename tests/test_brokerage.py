"""Brokerage desk: holdings at weighted average cost (a hand-worked example shown identically by
the service, the portfolio page and the API), sells beyond the holding refused, the trade state
machine, ledger postings, suitability flags, row scoping, bad input and concurrent sells."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.brokerage import services
from app.brokerage.models import Instrument, Position, Trade
from app.clients.models import Client
from app.core.errors import ConflictError, FieldError
from app.extensions import db
from app.ledger import services as ledger
from app.ledger.models import JournalEntry
from tests.support import api_token, count, login, make_branch, make_staff

D = Decimal
DAY = date(2026, 11, 2)


def make_instrument(symbol: str = "ACME", risk: str = "moderate", price: str | None = None):
    instrument = services.prepare_instrument(
        Instrument(
            symbol=symbol,
            name=f"{symbol} Ltd",
            kind="stock",
            exchange="NSE",
            currency="INR",
            risk_level=risk,
            last_price=D(price) if price else None,
        )
    )
    db.session.add(instrument)
    db.session.flush()
    return instrument


def make_client(agent, name: str = "Asha Verma", risk: str | None = "aggressive") -> Client:
    client = Client(
        name=name,
        branch_id=agent.branch_id,
        relationship_manager_id=agent.user_id,
        risk_profile=risk,
    )
    db.session.add(client)
    db.session.flush()
    return client


def trade(client, instrument, side, quantity, price, fees="0.00", trade_date=DAY) -> Trade:
    return services.record_trade(
        {
            "client_id": client.id,
            "instrument_id": instrument.id,
            "side": side,
            "quantity": quantity,
            "price": price,
            "fees": fees,
            "trade_date": trade_date,
        }
    )


def settled(client, instrument, side, quantity, price, fees="0.00") -> Trade:
    t = trade(client, instrument, side, quantity, price, fees)
    services.settle_trade(t.id, DAY)
    db.session.commit()
    return t


def auth(http, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(http, staff.user.username)}"}


@pytest.fixture
def desk(app):
    branch = make_branch(tz="UTC")
    manager = make_staff("Manager", branch)
    agent = make_staff("Agent", branch)
    other_agent = make_staff("Agent", branch)
    client = make_client(agent)
    instrument = make_instrument("ACME")
    db.session.commit()
    return {
        "branch": branch,
        "manager": manager,
        "agent": agent,
        "other_agent": other_agent,
        "client": client,
        "instrument": instrument,
    }


# The hand-worked example:
#   buy 100 @ 10.00 fee 10.00 -> gross 1,000.00, cost 1,010.00
#   buy  50 @ 13.00 fee  5.00 -> gross   650.00, cost   655.00
#        held 150 units, cost 1,665.00, average 1,665.00 / 150 = 11.10
#   sell 60 @ 15.00 fee  6.00 -> gross   900.00, cost of sold 11.10 x 60 = 666.00
#        realised 900.00 - 6.00 - 666.00 = 228.00; left 90 units, cost 1,665.00 - 666.00 = 999.00
#   price moves to 12.50 -> market value 90 x 12.50 = 1,125.00, unrealised 1,125.00 - 999.00 = 126.00
EXPECTED = {
    "quantity": "90",
    "average_cost": "11.10",
    "cost": "999.00",
    "last_price": "12.500000",
    "market_value": "1125.00",
    "unrealised_pnl": "126.00",
    "realised_pnl": "228.00",
}


def hand_worked_example(desk) -> None:
    client, acme = desk["client"], desk["instrument"]
    settled(client, acme, "buy", "100", "10.00", "10.00")
    settled(client, acme, "buy", "50", "13.00", "5.00")
    sell = settled(client, acme, "sell", "60", "15.00", "6.00")
    assert (sell.cost_of_sold, sell.realised_pnl) == (D("666.00"), D("228.00"))
    acme.last_price = D("12.50")
    db.session.commit()


def test_hand_worked_example_service_page_and_api(app, desk):
    hand_worked_example(desk)
    client = desk["client"]

    report = services.portfolio(client.id)
    (row,) = report.rows
    assert row.quantity == D("90")
    assert row.average_cost == D("11.10")
    assert row.cost == D("999.00")
    assert row.market_value == D("1125.00")
    assert row.unrealised_pnl == D("126.00")
    assert row.realised_pnl == D("228.00")
    assert (report.market_value, report.unrealised_pnl, report.realised_pnl) == (
        D("1125.00"),
        D("126.00"),
        D("228.00"),
    )
    assert services.verify_positions() == []

    http = app.test_client()
    body = http.get(
        f"/api/v1/client/{client.id}/portfolio", headers=auth(http, desk["manager"])
    ).json
    holding = body["holdings"][0]
    assert {key: holding[key] for key in EXPECTED} == EXPECTED
    assert body["totals"] == {
        "cost": "999.00",
        "market_value": "1125.00",
        "unrealised_pnl": "126.00",
        "realised_pnl": "228.00",
    }

    login(http, desk["manager"].user.username)
    page = http.get(f"/portfolio/{client.id}").get_data(as_text=True)
    for figure in ("90", "11.10", "999.00", "12.5", "1,125.00", "126.00", "228.00"):
        assert f">{figure}<" in page, figure


def test_client_api_routes_still_answer_beside_the_portfolio(app, desk):
    http = app.test_client()
    headers = auth(http, desk["manager"])
    assert http.get(f"/api/v1/client/{desk['client'].id}", headers=headers).status_code == 200
    assert (
        http.get(f"/api/v1/client/{desk['client'].id}/timeline", headers=headers).status_code == 200
    )
    assert http.get("/api/v1/client/999999/portfolio", headers=headers).status_code == 404


def test_rebuilt_positions_match_stored_ones(app, desk):
    hand_worked_example(desk)
    other = make_instrument("BETA")
    settled(desk["client"], other, "buy", "3", "33.333333", "1.00")  # gross 100.00 (99.999999)
    settled(desk["client"], other, "sell", "1", "40", "0.50")
    settled(desk["client"], other, "sell", "2", "41", "0.50")  # sells everything: no cost left
    position = db.session.scalar(select(Position).where(Position.instrument_id == other.id))
    assert (position.quantity, position.cost) == (D("0"), D("0.00"))
    # cost 101.00; first sell: 101.00 x 1/3 = 33.67 -> realised 40.00 - 0.50 - 33.67 = 5.83;
    # second: the remaining 67.33 -> realised 82.00 - 0.50 - 67.33 = 14.17; total 20.00.
    assert position.realised_pnl == D("20.00")
    assert services.verify_positions() == []
    position.cost = D("1.00")
    db.session.flush()
    assert services.verify_positions() != []
    db.session.rollback()


def test_sell_beyond_settled_holding_less_pending_sells_is_refused(app, desk):
    client, acme = desk["client"], desk["instrument"]
    settled(client, acme, "buy", "10", "100")
    trade(client, acme, "buy", "5", "100")  # pending buys do not count
    trade(client, acme, "sell", "6", "110")  # pending sell: 4 left to sell
    db.session.commit()
    before = (count(Trade), count(JournalEntry))
    with pytest.raises(FieldError) as refused:
        trade(client, acme, "sell", "4.000001", "110")
    assert refused.value.field == "quantity"
    assert "at most 4" in refused.value.message
    db.session.rollback()

    http = app.test_client()
    response = http.post(
        "/api/v1/trade/",
        headers=auth(http, desk["agent"]),
        json={
            "client_id": client.id,
            "instrument_id": acme.id,
            "side": "sell",
            "quantity": "5",
            "price": "110",
            "trade_date": "2026-11-02",
        },
    )
    assert response.status_code == 422
    assert "quantity" in response.json["message"]
    assert (count(Trade), count(JournalEntry)) == before


def test_state_machine_settle_and_cancel(app, desk):
    client, acme = desk["client"], desk["instrument"]
    first = trade(client, acme, "buy", "10", "100")
    second = trade(client, acme, "buy", "10", "100")
    db.session.commit()
    http = app.test_client()
    headers = auth(http, desk["manager"])
    assert (
        http.post(f"/api/v1/trade/{first.id}/settle", headers=headers).json["status"] == "settled"
    )
    assert http.post(f"/api/v1/trade/{first.id}/settle", headers=headers).status_code == 409
    assert http.post(f"/api/v1/trade/{first.id}/cancel", headers=headers).status_code == 409
    assert (
        http.post(f"/api/v1/trade/{second.id}/cancel", headers=headers).json["status"]
        == "cancelled"
    )
    assert http.post(f"/api/v1/trade/{second.id}/settle", headers=headers).status_code == 409
    # An agent records trades but neither settles nor cancels them.
    third = trade(client, acme, "buy", "1", "100")
    db.session.commit()
    agent = auth(http, desk["agent"])
    assert http.post(f"/api/v1/trade/{third.id}/settle", headers=agent).status_code == 403
    with pytest.raises(ConflictError):
        services.cancel_trade(first.id)


def test_ledger_postings_and_trial_balance(app, desk):
    hand_worked_example(desk)
    cancelled = trade(desk["client"], desk["instrument"], "buy", "1", "10")
    services.cancel_trade(cancelled.id)
    db.session.commit()
    entries = db.session.scalars(
        select(JournalEntry).where(JournalEntry.source_type == "trade").order_by(JournalEntry.id)
    ).all()
    assert len(entries) == 3  # the cancelled trade posts nothing

    def legs(entry):
        return sorted((line.account.code, line.debit, line.credit) for line in entry.lines)

    assert legs(entries[0]) == [
        (ledger.CASH, D("1010.00"), D("0.00")),
        (ledger.EXCHANGE_CLEARING, D("0.00"), D("1000.00")),
        (ledger.BROKERAGE_INCOME, D("0.00"), D("10.00")),
    ]
    assert legs(entries[2]) == [
        (ledger.CASH, D("0.00"), D("894.00")),
        (ledger.EXCHANGE_CLEARING, D("900.00"), D("0.00")),
        (ledger.BROKERAGE_INCOME, D("0.00"), D("6.00")),
    ]
    report = ledger.trial_balance_report()
    assert report.balanced
    income = next(row for row in report.rows if row.code == ledger.BROKERAGE_INCOME)
    assert income.credit == D("21.00")  # 10.00 + 5.00 + 6.00
    clearing = next(row for row in report.rows if row.code == ledger.EXCHANGE_CLEARING)
    assert clearing.balance == D("-750.00")  # sold 900.00 - bought 1,000.00 - 650.00
    cash = next(row for row in report.rows if row.code == ledger.CASH)
    assert cash.balance == D("771.00")  # in 1,010.00 + 655.00, out 894.00


def test_suitability_flag_on_trade_and_compliance_report(app, desk):
    careful = make_client(desk["agent"], "Careful Client", risk="conservative")
    unprofiled = make_client(desk["agent"], "New Client", risk=None)
    risky = make_instrument("RISKY", risk="aggressive")
    safe = make_instrument("SAFE", risk="conservative")
    flagged = trade(careful, risky, "buy", "1", "10")
    fine = trade(careful, safe, "buy", "1", "10")
    no_profile = trade(unprofiled, safe, "buy", "1", "10")
    aggressive_ok = trade(desk["client"], risky, "buy", "1", "10")
    db.session.commit()
    assert flagged.suitability_flag
    assert "aggressive" in flagged.suitability_reason
    assert "conservative" in flagged.suitability_reason
    assert not fine.suitability_flag and not aggressive_ok.suitability_flag
    assert no_profile.suitability_flag and "no risk profile" in no_profile.suitability_reason

    http = app.test_client()
    compliance = make_staff("Compliance", desk["branch"])
    db.session.commit()
    login(http, compliance.user.username)
    page = http.get("/kycreport/").get_data(as_text=True)
    assert "Suitability flags" in page
    assert 'id="suitability-count">2<' in page
    assert f"TR-{flagged.id:06d}" in page
    listing = http.get("/tradeview/list/").get_data(as_text=True)
    assert "Flagged" in listing


def test_agent_sees_only_own_clients_portfolio_and_trades(app, desk):
    theirs = make_client(desk["other_agent"], "Someone Else")
    their_trade = trade(theirs, desk["instrument"], "buy", "1", "10")
    mine = trade(desk["client"], desk["instrument"], "buy", "1", "10")
    db.session.commit()
    http = app.test_client()
    headers = auth(http, desk["agent"])
    assert http.get(f"/api/v1/client/{theirs.id}/portfolio", headers=headers).status_code == 404
    assert http.get(f"/api/v1/trade/{their_trade.id}", headers=headers).status_code == 404
    assert http.get(f"/api/v1/trade/{mine.id}", headers=headers).status_code == 200
    listed = http.get("/api/v1/trade/", headers=headers).json["ids"]
    assert listed == [mine.id]
    assert (
        http.get(f"/api/v1/client/{desk['client'].id}/portfolio", headers=headers).status_code
        == 200
    )
    # Recording a trade for another agent's client is refused as an unknown client.
    response = http.post(
        "/api/v1/trade/",
        headers=headers,
        json={
            "client_id": theirs.id,
            "instrument_id": desk["instrument"].id,
            "side": "buy",
            "quantity": "1",
            "price": "10",
        },
    )
    assert response.status_code == 422 and "client_id" in response.json["message"]
    login(http, desk["agent"].user.username)
    assert http.get(f"/portfolio/{theirs.id}").status_code == 404
    assert http.get(f"/tradeview/show/{their_trade.id}").status_code == 404


@pytest.mark.parametrize(
    "field,value",
    [
        ("quantity", "0"),
        ("quantity", "-1"),
        ("quantity", "NaN"),
        ("quantity", 1e309),
        ("quantity", "abc"),
        ("quantity", True),
        ("quantity", "1.0000001"),
        ("quantity", None),
        ("price", "10.1234567"),
        ("price", "0"),
        ("price", "Infinity"),
        ("price", "1e13"),
        ("fees", "-1"),
        ("fees", "0.001"),
        ("side", "short"),
        ("trade_date", "2026-13-01"),
        ("trade_date", "2999-01-01"),
        ("client_id", "x"),
        ("instrument_id", 999999),
    ],
)
def test_bad_trade_input_is_refused_naming_the_field(app, desk, field, value):
    http = app.test_client()
    body = {
        "client_id": desk["client"].id,
        "instrument_id": desk["instrument"].id,
        "side": "buy",
        "quantity": "10",
        "price": "10.00",
        "fees": "1.00",
        "trade_date": "2026-11-02",
        field: value,
    }
    response = http.post("/api/v1/trade/", headers=auth(http, desk["manager"]), json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["message"]
    assert count(Trade) == 0


def test_instrument_rules(app, desk):
    with pytest.raises(ConflictError):
        make_instrument("acme")
    db.session.rollback()
    with pytest.raises(FieldError) as refused:
        services.prepare_instrument(
            Instrument(
                symbol="USX", name="US thing", kind="stock", currency="USD", risk_level="moderate"
            )
        )
    assert refused.value.field == "currency"
    http = app.test_client()
    headers = auth(http, desk["manager"])
    response = http.post(
        "/api/v1/instrument/",
        headers=headers,
        json={
            "symbol": "nifty.etf",
            "name": "Nifty ETF",
            "currency": "INR",
            "kind": "etf",
            "risk_level": "conservative",
        },
    )
    assert response.status_code == 201, response.json
    assert (
        http.get(f"/api/v1/instrument/{response.json['id']}", headers=headers).json["result"][
            "symbol"
        ]
        == "NIFTY.ETF"
    )
    bad = http.post(
        "/api/v1/instrument/",
        headers=headers,
        json={
            "symbol": "X",
            "name": "X",
            "kind": "crypto",
            "currency": "INR",
            "risk_level": "moderate",
        },
    )
    assert bad.status_code == 422 and "kind" in bad.json["message"]
    agent = auth(http, desk["agent"])
    assert (
        http.post(
            "/api/v1/instrument/", headers=agent, json={"symbol": "Y", "name": "Y"}
        ).status_code
        == 403
    )


def test_trade_on_client_timeline(app, desk):
    t = trade(desk["client"], desk["instrument"], "buy", "5", "10")
    db.session.commit()
    http = app.test_client()
    body = http.get(
        f"/api/v1/client/{desk['client'].id}/timeline?kind=trade",
        headers=auth(http, desk["manager"]),
    ).json
    assert any(f"TR-{t.id:06d}: buy 5 ACME" in event["title"] for event in body["result"])


def test_concurrent_sells_of_the_whole_holding(pg_app):
    branch = make_branch(tz="UTC")
    agent = make_staff("Agent", branch)
    client = make_client(agent)
    acme = make_instrument("ACME")
    settled(client, acme, "buy", "100", "10")
    client_id, acme_id = client.id, acme.id
    db.session.commit()

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sell_all():
        with pg_app.app_context():
            try:
                barrier.wait()
                t = services.record_trade(
                    {
                        "client_id": client_id,
                        "instrument_id": acme_id,
                        "side": "sell",
                        "quantity": "100",
                        "price": "12",
                        "trade_date": DAY,
                    }
                )
                services.settle_trade(t.id, DAY)
                db.session.commit()
                outcomes.append("settled")
            except FieldError as exc:
                db.session.rollback()
                outcomes.append(f"refused {exc.field}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sell_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused quantity", "settled"]
    db.session.expire_all()
    position = db.session.scalar(select(Position).where(Position.client_id == client_id))
    assert (position.quantity, position.cost, position.realised_pnl) == (
        D("0"),
        D("0.00"),
        D("200.00"),
    )
    assert services.verify_positions() == []
    assert ledger.trial_balance_report().balanced


def test_trade_screens_record_settle_and_cancel(app, desk):
    client, acme = desk["client"], desk["instrument"]
    http = app.test_client()
    login(http, desk["manager"].user.username)
    form = {
        "client": str(client.id),
        "instrument": str(acme.id),
        "side": "buy",
        "quantity": "10",
        "price": "100.5",
        "fees": "2.00",
        "trade_date": "2026-11-02",
    }
    assert http.post("/tradeview/add", data=form).status_code == 302
    bought = db.session.scalar(select(Trade))
    assert (bought.gross_amount, bought.trade_date, bought.status) == (
        D("1005.00"),
        DAY,
        "pending",
    )
    # A sell beyond the (unsettled) holding is refused on the form; nothing is written.
    page = http.post("/tradeview/add", data={**form, "side": "sell"}, follow_redirects=True)
    assert "can sell at most 0" in page.get_data(as_text=True)
    assert count(Trade) == 1

    done = http.post(f"/tradeview/settle/{bought.id}", follow_redirects=True)
    assert f"TR-{bought.id:06d} settled." in done.get_data(as_text=True)
    again = http.post(f"/tradeview/cancel/{bought.id}", follow_redirects=True)
    assert "only a pending trade cancels" in again.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Trade, bought.id).status == "settled"
    # Trades are not edited: there is no edit screen.
    assert http.get(f"/tradeview/edit/{bought.id}").status_code == 404

    # An agent records trades but may not settle them.
    agent = app.test_client()
    login(agent, desk["agent"].user.username)
    assert agent.post("/tradeview/add", data={**form, "quantity": "1"}).status_code == 302
    pending = db.session.scalar(select(Trade).where(Trade.status == "pending"))
    refused = agent.post(f"/tradeview/settle/{pending.id}")
    assert refused.status_code in (302, 403) and "/login" in refused.headers.get(
        "Location", "/login"
    )
    db.session.expire_all()
    assert db.session.get(Trade, pending.id).status == "pending"
