"""FX rates from a feed: a CSV file (all rows checked, nothing applied if one is bad, errors by
line), an HTTP provider, the `flask crm load-rates` command and the periodic job; the latest
rate is current and the inverse serves a pair quoted only the other way."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from app.core.errors import FieldError
from app.extensions import db
from app.forex.jobs import refresh_rates
from app.forex.models import FxRate
from app.forex.rates import CsvRateFeed, HttpRateFeed, current_rate, load_rates
from tests.forex_support import (
    make_currencies,
)
from tests.support import count

GOOD = (
    "base,quote,rate,as_of\n"
    "USD,EUR,0.9200,2026-11-20T09:00:00Z\n"
    "USD,INR,83.1234,2026-11-20T09:00:00Z\n"
    "USD,EUR,0.9300,2026-11-21T09:00:00Z\n"
)


@pytest.fixture
def currencies(app):
    make_currencies("INR", "USD", "EUR")
    db.session.commit()


def test_a_csv_file_loads_and_the_latest_rate_is_current(currencies, tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text(GOOD)
    added = load_rates(CsvRateFeed(path))
    db.session.commit()
    assert len(added) == 3 and added[0].source == "file:rates.csv"
    assert current_rate("USD", "EUR") == Decimal("0.93")
    assert current_rate("EUR", "USD") == Decimal("1.07526882")  # 1 / 0.93
    assert current_rate("EUR", "INR") is None
    # the same file again adds nothing
    assert load_rates(CsvRateFeed(path)) == []


def test_one_bad_row_and_nothing_is_loaded_with_errors_by_line(currencies, tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text(
        GOOD
        + "USD,XYZ,1.5,2026-11-20T09:00:00Z\n"
        + "USD,EUR,-1,2026-11-20T09:00:00Z\n"
        + "USD,EUR,abc,2026-11-20T09:00:00Z\n"
        + "USD,USD,1,2026-11-20T09:00:00Z\n"
        + "USD,EUR,0.9,yesterday\n"
    )
    with pytest.raises(FieldError) as refused:
        load_rates(CsvRateFeed(path))
    db.session.rollback()
    message = refused.value.message
    assert "line 5: unknown currency 'XYZ'" in message
    assert "line 6: rate '-1' must be more than 0" in message
    assert "line 7: rate 'abc' is not a number" in message
    assert "line 8: USD/USD is not a pair" in message
    assert "line 9: as_of 'yesterday' is not a date and time" in message
    assert count(FxRate) == 0


def test_a_file_without_the_columns_is_refused(currencies, tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("from,to,price\nUSD,EUR,0.9\n")
    with pytest.raises(FieldError, match="lacks the column"):
        load_rates(CsvRateFeed(path))


class _Provider(BaseHTTPRequestHandler):
    body = b""
    content_type = "application/json"

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = HTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/rates"
    server.shutdown()


def test_an_http_provider_answering_json(currencies, provider):
    _Provider.content_type = "application/json"
    _Provider.body = json.dumps(
        {"rates": [{"base": "EUR", "quote": "INR", "rate": "90.25", "as_of": "2026-11-21T08:00"}]}
    ).encode()
    added = load_rates(HttpRateFeed(provider))
    db.session.commit()
    assert [(r.base, r.quote, r.rate) for r in added] == [("EUR", "INR", Decimal("90.25"))]
    assert added[0].as_of == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert current_rate("INR", "EUR") == Decimal("0.01108033")


def test_an_http_provider_that_is_down_changes_nothing(currencies):
    with pytest.raises(FieldError, match="did not answer"):
        load_rates(HttpRateFeed("http://127.0.0.1:9/rates", timeout=2))
    assert count(FxRate) == 0


def test_the_command_loads_a_file_or_explains_the_errors(currencies, app, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text("base,quote,rate,as_of\nUSD,EUR,0,2026-11-20T09:00:00Z\n")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crm", "load-rates", str(good)])
    assert result.exit_code == 0, result.output
    assert "3 rate(s) added" in result.output
    result = runner.invoke(args=["crm", "load-rates", str(bad)])
    assert result.exit_code != 0 and "line 2: rate '0' must be more than 0" in result.output
    db.session.expire_all()
    assert count(FxRate) == 3


def test_the_periodic_job_reads_the_configured_file(currencies, app, tmp_path, provider):
    path = tmp_path / "feed.csv"
    path.write_text(GOOD)
    saved = {k: app.config.get(k) for k in ("CRM_FX_RATES_FILE", "CRM_FX_RATES_URL")}
    app.config["CRM_FX_RATES_FILE"] = str(path)
    try:
        assert refresh_rates() == {"added": 3, "feed": "file:feed.csv"}
        assert refresh_rates()["added"] == 0  # re-reading the unchanged file adds nothing
        path.write_text("base,quote,rate,as_of\nUSD,EUR,x,2026-11-22T09:00:00Z\n")
        result = refresh_rates()
        assert result["added"] == 0 and "line 2" in result["error"]
        _Provider.content_type = "text/csv"
        _Provider.body = b"base,quote,rate,as_of\nUSD,EUR,0.94,2026-11-22T09:00:00Z\n"
        app.config["CRM_FX_RATES_URL"] = provider
        assert refresh_rates()["added"] == 1
    finally:
        app.config.update(saved)
    db.session.expire_all()
    assert current_rate("USD", "EUR") == Decimal("0.94")


def test_a_manager_adds_a_currency_and_a_rate_by_screen(app, client):
    from app.forex.models import Currency
    from tests.support import login, make_branch, make_staff

    manager = make_staff("Manager", make_branch())
    make_currencies("INR", "USD")
    db.session.commit()
    login(client, manager.user.username)
    answer = client.post(
        "/currencyview/add", data={"code": "gbp", "name": "Pound sterling", "active": "y"}
    )
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.query(Currency).filter_by(code="GBP").one().name == "Pound sterling"
    form = client.get("/fxrateview/add").get_data(as_text=True)
    assert 'name="rate"' in form
    answer = client.post(
        "/fxrateview/add",
        data={"base": "gbp", "quote": "INR", "rate": "105.5", "as_of": "2026-11-21 09:00:00"},
    )
    assert answer.status_code == 302
    assert current_rate("GBP", "INR") == Decimal("105.5")
    refused = client.post(
        "/fxrateview/add",
        data={"base": "GBP", "quote": "INR", "rate": "-2", "as_of": "2026-11-21 09:00:00"},
        follow_redirects=True,
    )
    assert "Rate: must be between 0 and 9999999999." in refused.get_data(as_text=True)
    zero = client.post(
        "/fxrateview/add",
        data={"base": "GBP", "quote": "INR", "rate": "0", "as_of": "2026-11-21 09:00:00"},
        follow_redirects=True,
    )
    assert "Rate: must be more than 0" in zero.get_data(as_text=True)
    assert count(FxRate) == 1
