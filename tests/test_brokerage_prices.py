"""Instrument prices: the CSV feed (all rows or none, problems by line), the HTTP provider
against a local server, `flask crm load-prices` and the periodic refresh job."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from app.brokerage.jobs import refresh_prices
from app.brokerage.models import Instrument, InstrumentPrice
from app.brokerage.prices import CsvPriceFeed, HttpPriceFeed, PriceFeedError, Quote, apply_prices
from app.extensions import db
from tests.support import count
from tests.test_brokerage import make_instrument

D = Decimal
SAMPLE = Path(__file__).resolve().parents[1] / "scripts" / "sample-prices.csv"


@pytest.fixture
def instruments(app):
    made = {s: make_instrument(s, price="10") for s in ("ACME", "BETA")}
    db.session.commit()
    return made


def write(tmp_path, text: str):
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


def prices() -> dict[str, Decimal]:
    db.session.expire_all()
    return {i.symbol: i.last_price for i in db.session.query(Instrument)}


def test_csv_feed_applies_every_price_and_reports_unknown_symbols(app, instruments, tmp_path):
    path = write(
        tmp_path,
        "symbol,price,as_of\nacme,12.50,2026-11-20\nBETA,7.123456,2026-11-20\nZZZ,1,2026-11-20\n",
    )
    quotes = CsvPriceFeed(path).fetch()
    assert quotes["ACME"] == Quote(D("12.500000"), date(2026, 11, 20))
    result = apply_prices(quotes)
    db.session.commit()
    assert (result.applied, result.unknown) == (2, ["ZZZ"])
    assert prices() == {"ACME": D("12.5"), "BETA": D("7.123456")}
    assert count(InstrumentPrice) == 2
    acme = db.session.query(Instrument).filter_by(symbol="ACME").one()
    assert acme.last_price_at.date() == date(2026, 11, 20)


@pytest.mark.parametrize(
    "text,problem",
    [
        ("symbol,price\nACME,1\n", "line 1: the header must name symbol, price, as_of"),
        ("symbol,price,as_of\nACME,12.50,2026-11-20\nBETA,-1,2026-11-20\n", "line 3: Price"),
        ("symbol,price,as_of\nACME,abc,2026-11-20\n", "line 2: Price"),
        ("symbol,price,as_of\nACME,NaN,2026-11-20\n", "line 2: Price"),
        ("symbol,price,as_of\nACME,1.1234567,2026-11-20\n", "line 2: Price"),
        ("symbol,price,as_of\nACME,1,20-11-2026\n", "line 2: As of"),
        ("symbol,price,as_of\nACME,1,2026-11-20\nacme,2,2026-11-20\n", "line 3: Symbol"),
        ("symbol,price,as_of\n,1,2026-11-20\n", "line 2: Symbol"),
    ],
)
def test_a_bad_csv_row_refuses_the_file(app, instruments, tmp_path, text, problem):
    with pytest.raises(PriceFeedError) as refused:
        CsvPriceFeed(write(tmp_path, text)).fetch()
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def test_load_prices_command(app, instruments, tmp_path):
    runner = app.test_cli_runner()
    good = write(tmp_path, "symbol,price,as_of\nACME,12.50,2026-11-20\nNOPE,3,2026-11-20\n")
    result = runner.invoke(args=["crm", "load-prices", str(good)])
    assert result.exit_code == 0, result.output
    assert "1 prices applied" in result.output
    assert "unknown symbol NOPE" in result.output
    assert prices()["ACME"] == D("12.5")

    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,price,as_of\nACME,99,2026-11-21\nBETA,0,2026-11-21\n")
    result = runner.invoke(args=["crm", "load-prices", str(bad)])
    assert result.exit_code == 1
    assert "line 3: Price: must be more than zero." in result.output
    assert "no price was applied" in result.output
    assert prices() == {"ACME": D("12.5"), "BETA": D("10")}

    missing = runner.invoke(args=["crm", "load-prices", str(tmp_path / "none.csv")])
    assert missing.exit_code == 1 and "cannot be read" in missing.output


def test_sample_price_file_loads(app, tmp_path):
    for symbol in ("INFY", "NIFTYBEES", "GSEC2033"):
        make_instrument(symbol)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["crm", "load-prices", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "3 prices applied" in result.output


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, bytes]] = {}
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        self.seen.append(self.path)
        status, body = self.answers[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def price_server():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen.clear()
    _Handler.answers = {
        "/good": (
            200,
            json.dumps(
                {
                    "prices": [
                        {"symbol": "ACME", "price": "11.25", "as_of": "2026-11-20"},
                        {"symbol": "BETA", "price": 8.5, "as_of": "2026-11-20"},
                    ]
                }
            ).encode(),
        ),
        "/down": (503, b'{"error": "maintenance"}'),
        "/garbage": (200, b"<html>not json"),
        "/shape": (200, b'{"prices": {"ACME": 1}}'),
        "/badrow": (200, b'{"prices": [{"symbol": "ACME", "price": "-3", "as_of": "2026-11-20"}]}'),
    }
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_feed(app, instruments, price_server):
    quotes = HttpPriceFeed(f"{price_server}/good", timeout=5).fetch(["ACME", "BETA"])
    assert quotes == {
        "ACME": Quote(D("11.250000"), date(2026, 11, 20)),
        "BETA": Quote(D("8.500000"), date(2026, 11, 20)),
    }
    assert _Handler.seen[-1] == "/good?symbols=ACME%2CBETA"
    for path, message in [
        ("/down", "HTTP 503"),
        ("/garbage", "not JSON"),
        ("/shape", "no list of prices"),
        ("/badrow", "entry 1: Price"),
    ]:
        with pytest.raises(PriceFeedError) as refused:
            HttpPriceFeed(f"{price_server}{path}", timeout=5).fetch(["ACME"])
        assert message in str(refused.value)
    with pytest.raises(PriceFeedError, match="no answer"):
        HttpPriceFeed("http://127.0.0.1:9/", timeout=1).fetch(["ACME"])


def test_refresh_job_with_http_feed(app, instruments, price_server, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED", "http")
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED_URL", f"{price_server}/good")
    assert refresh_prices() == {"applied": 2, "status": "ok", "unknown": 0}
    assert prices() == {"ACME": D("11.25"), "BETA": D("8.5")}
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED_URL", f"{price_server}/down")
    assert refresh_prices()["status"] == "refused"
    assert prices() == {"ACME": D("11.25"), "BETA": D("8.5")}


def test_refresh_job_with_csv_feed_and_missing_file(
    app, instruments, tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED", "csv")
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED_FILE", str(tmp_path / "absent.csv"))
    assert refresh_prices() == {"applied": 0, "status": "no price file"}
    assert "no price file" in caplog.text
    path = write(tmp_path, "symbol,price,as_of\nACME,13,2026-11-20\n")
    monkeypatch.setitem(app.config, "CRM_PRICE_FEED_FILE", str(path))
    assert refresh_prices()["applied"] == 1
    assert prices()["ACME"] == D("13")


def test_price_refresh_is_a_periodic_job():
    from app.core.schedule import BY_NAME

    assert BY_NAME["price-refresh"].func == "app.brokerage.jobs.refresh_prices"
