"""Prices and FX rates pushed by a provider: signed deliveries recorded through the pulled
feeds' services, replays and older prices changing nothing, bad input refused and audited, and
stale prices flagged on the portfolio (page and API); on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import requests
from sqlalchemy import select

from app.audit.models import AuditLog
from app.brokerage import services as brokerage
from app.brokerage.models import Instrument, InstrumentPrice
from app.core.signing import signature_header
from app.extensions import db
from app.forex.models import FxRate
from app.forex.rates import current_rate
from app.market_data.models import MarketEvent
from app.payments.test_gateway import serve_in_thread
from tests.forex_support import make_currencies, make_rate
from tests.support import api_token, count, login, make_branch, make_staff
from tests.test_brokerage import make_client, make_instrument

SECRET = "mkt_test_secret_0123456789"
OLD = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 14:30 in Mumbai (IST)


@pytest.fixture(params=["app", "pg_app"])
def any_app(request, monkeypatch):
    app = request.getfixturevalue(request.param)
    monkeypatch.setitem(app.config, "CRM_PRICE_WEBHOOK_SECRET", SECRET)
    return app


@pytest.fixture
def holding(any_app):
    """A Mumbai manager's client holding 100 ACME bought at 10.00, priced 10 on 20 Nov."""
    branch = make_branch(tz="Asia/Kolkata")
    manager = make_staff("Manager", branch)
    client = make_client(manager)
    acme = make_instrument("ACME", price="10")
    acme.last_price_at = OLD
    trade = brokerage.record_trade(
        {
            "client_id": client.id,
            "instrument_id": acme.id,
            "side": "buy",
            "quantity": "100",
            "price": "10.00",
            "fees": "0.00",
            "trade_date": OLD.date(),
        }
    )
    brokerage.settle_trade(trade.id, OLD.date())
    db.session.commit()
    return {"client_id": client.id, "manager": manager.user.username, "acme": acme.id}


def post(app, kind: str, body: dict, secret: str = SECRET, timestamp: int | None = None):
    db.session.rollback()  # SQLite: the test's open read would block the app's write
    payload = json.dumps(body).encode()
    return app.test_client().post(
        f"/webhooks/market/{kind}",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Market-Signature": signature_header(secret, payload, timestamp),
        },
    )


def now_iso(offset_minutes: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=offset_minutes)).isoformat()


def acme() -> Instrument:
    db.session.expire_all()
    return db.session.scalars(select(Instrument).where(Instrument.symbol == "ACME")).one()


def refusals() -> list[AuditLog]:
    return db.session.scalars(
        select(AuditLog).where(AuditLog.action == "market webhook refused").order_by(AuditLog.id)
    ).all()


def portfolio_json(app, holding) -> dict:
    http = app.test_client()
    token = api_token(http, holding["manager"])
    answer = http.get(
        f"/api/v1/client/{holding['client_id']}/portfolio",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def test_signed_price_updates_the_valuation_and_a_replay_changes_nothing(any_app, holding):
    at = now_iso(-1)
    event = {"id": "px_1", "symbol": "acme", "price": "12.50", "as_of": at}
    answer = post(any_app, "prices", event)
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "applied"
    assert acme().last_price == D("12.5") and acme().last_price_at == datetime.fromisoformat(at)
    history = db.session.scalars(select(InstrumentPrice)).all()
    assert [(h.price, h.source) for h in history] == [(D("12.5"), "webhook")]

    body = portfolio_json(any_app, holding)
    assert body["holdings"][0]["market_value"] == "1250.00"
    assert body["holdings"][0]["unrealised_pnl"] == "250.00"
    assert body["holdings"][0]["price_stale"] is False and body["stale_prices"] == []

    replay = post(any_app, "prices", {**event, "price": "99.00"})
    assert replay.status_code == 200 and replay.json["status"] == "duplicate"
    assert acme().last_price == D("12.5") and count(InstrumentPrice) == 1
    assert count(MarketEvent) == 1
    assert db.session.scalars(select(AuditLog).where(AuditLog.action == "market event")).one()


def test_forged_signature_and_stale_timestamp_are_refused(any_app, holding):
    event = {"id": "px_f", "symbol": "ACME", "price": "12.50", "as_of": now_iso()}
    before = len(refusals())
    forged = post(any_app, "prices", event, secret="not-the-secret")
    assert forged.status_code == 401 and "does not match" in forged.json["message"]
    stale = post(any_app, "prices", event, timestamp=int(time.time()) - 301)
    assert stale.status_code == 400 and "tolerance" in stale.json["message"]
    assert acme().last_price == D("10") and count(MarketEvent) == 0
    assert count(InstrumentPrice) == 0
    assert len(refusals()) == before + 2


def test_an_older_price_is_ignored_and_keeps_the_newer(any_app, holding):
    assert (
        post(
            any_app,
            "prices",
            {"id": "px_new", "symbol": "ACME", "price": "12.50", "as_of": now_iso(-1)},
        ).json["status"]
        == "applied"
    )
    older = post(
        any_app,
        "prices",
        {"id": "px_old", "symbol": "ACME", "price": "11.00", "as_of": now_iso(-30)},
    )
    assert older.status_code == 200 and older.json["status"] == "ignored"
    assert "older than the price held" in older.json["outcome"]
    assert acme().last_price == D("12.5") and count(InstrumentPrice) == 1
    again = post(
        any_app,
        "prices",
        {"id": "px_old", "symbol": "ACME", "price": "11.00", "as_of": now_iso(-30)},
    )
    assert again.json["status"] == "duplicate"


@pytest.mark.parametrize(
    "change,status,message",
    [
        ({"symbol": "ZZZ"}, 422, "ZZZ is not an instrument"),
        ({"price": "abc"}, 422, "Price: is not a number"),
        ({"price": "-3.50"}, 422, "Price: must be more than zero"),
        ({"price": "1.1234567"}, 422, "Price: has more than 6 decimal places"),
        ({"as_of": "yesterday"}, 422, "As of:"),
        ({"as_of": "2099-01-01T00:00:00Z"}, 422, "in the future"),
        ({"id": ""}, 400, "no id"),
    ],
)
def test_bad_price_is_refused_writes_nothing_and_is_audited(
    any_app, holding, change, status, message
):
    before = len(refusals())
    event = {"id": "px_bad", "symbol": "ACME", "price": "12.50", "as_of": now_iso(), **change}
    answer = post(any_app, "prices", event)
    assert answer.status_code == status and message in answer.json["message"], answer.json
    assert acme().last_price == D("10") and count(MarketEvent) == 0
    assert count(InstrumentPrice) == 0
    assert len(refusals()) == before + 1
    assert message in refusals()[-1].detail


def test_not_json_is_refused(any_app, holding):
    db.session.rollback()
    payload = b"symbol=ACME&price=1"
    answer = any_app.test_client().post(
        "/webhooks/market/prices",
        data=payload,
        headers={"Market-Signature": signature_header(SECRET, payload)},
    )
    assert answer.status_code == 400 and "not JSON" in answer.json["message"]


def test_fx_rate_recorded_through_the_rate_service(any_app):
    make_currencies("INR", "USD")
    make_rate("USD", "INR", "83.10000000", datetime.now(UTC) - timedelta(hours=1))
    db.session.commit()
    answer = post(
        any_app,
        "fx-rates",
        {"id": "fx_1", "base": "usd", "quote": "inr", "rate": "83.25", "as_of": now_iso(-1)},
    )
    assert answer.status_code == 200 and answer.json["status"] == "applied", answer.json
    db.session.expire_all()
    assert current_rate("USD", "INR") == D("83.25000000")
    assert db.session.scalars(select(FxRate).where(FxRate.source == "webhook")).one()

    older = post(
        any_app,
        "fx-rates",
        {"id": "fx_2", "base": "USD", "quote": "INR", "rate": "80.00", "as_of": now_iso(-120)},
    )
    assert older.json["status"] == "ignored" and count(FxRate) == 2
    assert current_rate("USD", "INR") == D("83.25000000")
    replay = post(
        any_app,
        "fx-rates",
        {"id": "fx_1", "base": "USD", "quote": "INR", "rate": "99", "as_of": now_iso()},
    )
    assert replay.json["status"] == "duplicate" and count(FxRate) == 2


@pytest.mark.parametrize(
    "change,message",
    [
        ({"quote": "XYZ"}, "unknown currency 'XYZ'"),
        ({"rate": "-1"}, "must be more than 0"),
        ({"rate": "eighty"}, "is not a number"),
        ({"quote": "USD"}, "USD/USD is not a pair"),
    ],
)
def test_bad_fx_rate_is_refused(any_app, change, message):
    make_currencies("INR", "USD")
    db.session.commit()
    before = len(refusals())
    event = {"id": "fx_bad", "base": "USD", "quote": "INR", "rate": "83", "as_of": now_iso()}
    answer = post(any_app, "fx-rates", {**event, **change})
    assert answer.status_code == 422 and message in answer.json["message"], answer.json
    assert count(FxRate) == 0 and count(MarketEvent) == 0
    assert len(refusals()) == before + 1


def test_stale_price_is_flagged_on_the_portfolio_page_and_api(any_app, holding):
    body = portfolio_json(any_app, holding)
    assert body["holdings"][0]["price_stale"] is True and body["stale_prices"] == ["ACME"]
    http = any_app.test_client()
    login(http, holding["manager"])
    page = http.get(f"/portfolio/{holding['client_id']}").get_data(as_text=True)
    assert 'id="stale-prices"' in page and "price-stale" in page
    assert "ACME (last priced 20 Nov 2026 14:30 IST)" in page  # 09:00 UTC, in the branch's zone

    post(
        any_app,
        "prices",
        {"id": "px_fresh", "symbol": "ACME", "price": "10.50", "as_of": now_iso(-1)},
    )
    page = http.get(f"/portfolio/{holding['client_id']}").get_data(as_text=True)
    assert 'id="stale-prices"' not in page and "price-stale" not in page
    assert portfolio_json(any_app, holding)["holdings"][0]["price_stale"] is False


def test_same_price_event_delivered_twice_at_once_applies_once(pg_app, monkeypatch):
    monkeypatch.setitem(pg_app.config, "CRM_PRICE_WEBHOOK_SECRET", SECRET)
    make_instrument("ACME", price="10").last_price_at = OLD
    db.session.commit()
    server, thread, url = serve_in_thread(pg_app)
    payload = json.dumps(
        {"id": "px_twice", "symbol": "ACME", "price": "12.50", "as_of": now_iso(-1)}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Market-Signature": signature_header(SECRET, payload),
    }
    start, answers = threading.Barrier(2), []

    def deliver():
        start.wait()
        answers.append(
            requests.post(
                f"{url}/webhooks/market/prices", data=payload, headers=headers, timeout=30
            )
        )

    try:
        workers = [threading.Thread(target=deliver) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    finally:
        server.shutdown()
        thread.join(5)
    assert sorted(a.json()["status"] for a in answers) == ["applied", "duplicate"]
    assert count(MarketEvent) == 1 and count(InstrumentPrice) == 1
    assert acme().last_price == D("12.5")
