"""Instrument prices from a pluggable feed.

A feed (``PriceFeed``) answers ``fetch(symbols)`` with ``{symbol: Quote(price, as_of)}``. Two
come with FinCRM:

- ``CsvPriceFeed(path)``: a CSV file with the header ``symbol,price,as_of`` (the default, also
  what ``flask crm load-prices FILE`` reads);
- ``HttpPriceFeed(base_url, timeout)``: ``GET base_url?symbols=A,B`` answering
  ``{"prices": [{"symbol": "A", "price": "12.50", "as_of": "2026-11-20"}, ...]}``.

Every quote is checked (a positive price with at most six decimals, a YYYY-MM-DD date, no
symbol twice); one bad quote refuses the whole batch with each problem named by its line or
entry, and nothing is applied. Symbols FinCRM does not know are reported and skipped.
``apply_prices`` writes the known quotes in two statements (an executemany update of the
instruments' last price and an insert of the price history).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import bindparam, insert, select, update

from app.brokerage.models import Instrument, InstrumentPrice
from app.brokerage.services import MAX_UNIT_PRICE, parse_units
from app.core.errors import DomainError
from app.core.validators import parse_date
from app.extensions import db
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Quote:
    price: Decimal
    as_of: date
    at: datetime | None = None
    """The moment of the price when the source gives one (a webhook); a feed's date alone
    stands for its midnight UTC."""

    @property
    def moment(self) -> datetime:
        return self.at or datetime.combine(self.as_of, time(0), UTC)


class PriceFeedError(Exception):
    """The feed's answer cannot be used; ``problems`` says why, line by line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PriceFeed(Protocol):
    source: str

    def fetch(self, symbols: Iterable[str] | None = None) -> dict[str, Quote]:
        """Quotes for ``symbols`` (None: whatever the feed has)."""


def _quotes(entries: Iterable[tuple[str, Any, Any, Any]]) -> dict[str, Quote]:
    """Check (where, symbol, price, as_of) entries; all good or PriceFeedError naming each."""
    quotes: dict[str, Quote] = {}
    problems: list[str] = []
    for where, symbol, price, as_of in entries:
        symbol = str(symbol or "").strip().upper()
        try:
            if not symbol:
                raise DomainError("is required.", "symbol")
            if symbol in quotes:
                raise DomainError(f"{symbol} is given twice.", "symbol")
            quote = Quote(
                parse_units(price, "price", MAX_UNIT_PRICE),
                parse_date(as_of, "as_of", required=True),
            )
        except DomainError as exc:
            problems.append(f"{where}: {exc}")
            continue
        quotes[symbol] = quote
    if problems:
        raise PriceFeedError(problems)
    return quotes


class CsvPriceFeed:
    source = "csv"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def fetch(self, symbols: Iterable[str] | None = None) -> dict[str, Quote]:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise PriceFeedError([f"{self.path}: cannot be read ({exc.strerror or exc})."]) from exc
        if len(raw) > MAX_FILE_BYTES:
            raise PriceFeedError([f"{self.path}: larger than {MAX_FILE_BYTES} bytes."])
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PriceFeedError([f"{self.path}: not UTF-8 text."]) from exc
        reader = csv.DictReader(io.StringIO(text))
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = {"symbol", "price", "as_of"} - set(header)
        if missing:
            raise PriceFeedError(
                [
                    f"line 1: the header must name symbol, price, as_of (missing {', '.join(sorted(missing))})."
                ]
            )
        reader.fieldnames = header
        quotes = _quotes(
            (f"line {reader.line_num}", row.get("symbol"), row.get("price"), row.get("as_of"))
            for row in reader
        )
        if symbols is not None:
            wanted = set(symbols)
            quotes = {s: q for s, q in quotes.items() if s in wanted}
        return quotes


class HttpPriceFeed:
    """A price provider over HTTP (JSON); refuses a non-2xx answer or a malformed body."""

    source = "http"

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.timeout = timeout

    def fetch(self, symbols: Iterable[str] | None = None) -> dict[str, Quote]:
        import requests

        params = {"symbols": ",".join(sorted(symbols))} if symbols is not None else None
        try:
            response = requests.get(self.base_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PriceFeedError(
                [f"{self.base_url}: no answer ({exc.__class__.__name__})."]
            ) from exc
        if not 200 <= response.status_code < 300:
            raise PriceFeedError([f"{self.base_url}: answered HTTP {response.status_code}."])
        try:
            body = response.json()
        except ValueError as exc:
            raise PriceFeedError([f"{self.base_url}: the answer is not JSON."]) from exc
        prices = body.get("prices") if isinstance(body, dict) else None
        if not isinstance(prices, list) or not all(isinstance(p, dict) for p in prices):
            raise PriceFeedError([f"{self.base_url}: the answer has no list of prices."])
        return _quotes(
            (f"entry {n}", p.get("symbol"), p.get("price"), p.get("as_of"))
            for n, p in enumerate(prices, 1)
        )


@dataclass
class PriceUpdate:
    applied: int = 0
    unknown: list[str] = field(default_factory=list)


def apply_prices(quotes: dict[str, Quote], source: str = "csv") -> PriceUpdate:
    """Set each known instrument's last price (and keep the history); the caller commits."""
    known = (
        dict(
            db.session.execute(
                select(Instrument.symbol, Instrument.id).where(Instrument.symbol.in_(list(quotes))),
                execution_options=UNSCOPED,
            ).all()
        )
        if quotes
        else {}
    )
    result = PriceUpdate(unknown=sorted(set(quotes) - set(known)))
    symbol_of = {pk: symbol for symbol, pk in known.items()}
    rows = [
        {
            "b_id": known[symbol],
            "b_price": quote.price,
            "b_at": quote.moment,
        }
        for symbol, quote in quotes.items()
        if symbol in known
    ]
    if not rows:
        return result
    db.session.connection().execute(
        update(Instrument.__table__)
        .where(Instrument.__table__.c.id == bindparam("b_id"))
        .values(last_price=bindparam("b_price"), last_price_at=bindparam("b_at")),
        rows,
    )
    db.session.execute(
        insert(InstrumentPrice),
        [
            {
                "instrument_id": row["b_id"],
                "price": row["b_price"],
                "as_of": quotes[symbol_of[row["b_id"]]].as_of,
                "source": source,
                "recorded_at": datetime.now(UTC),
            }
            for row in rows
        ],
    )
    db.session.expire_all()
    result.applied = len(rows)
    return result


def configured_feed() -> PriceFeed:
    """The feed the settings name: ``CRM_PRICE_FEED`` "csv" (``CRM_PRICE_FEED_FILE``) or "http"
    (``CRM_PRICE_FEED_URL``)."""
    config = current_app.config
    kind = config.get("CRM_PRICE_FEED", "csv")
    if kind == "http":
        return HttpPriceFeed(
            config.get("CRM_PRICE_FEED_URL") or "", config.get("CRM_PRICE_FEED_TIMEOUT", 10)
        )
    if kind == "csv":
        return CsvPriceFeed(config.get("CRM_PRICE_FEED_FILE") or "")
    raise PriceFeedError([f"CRM_PRICE_FEED is {kind!r}; use 'csv' or 'http'."])


def load_prices_cli(path: str) -> None:
    """``flask crm load-prices FILE``: all quotes applied, or none and exit code 1."""
    import click

    try:
        quotes = CsvPriceFeed(path).fetch()
    except PriceFeedError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo("no price was applied", err=True)
        raise click.exceptions.Exit(1) from exc
    result = apply_prices(quotes, "csv")
    db.session.commit()
    for symbol in result.unknown:
        click.echo(f"unknown symbol {symbol}: skipped", err=True)
    click.echo(f"{result.applied} prices applied")
