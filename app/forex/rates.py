"""FX rates: where they come from (a feed) and which one is current.

A feed yields rows ``(base, quote, rate, as_of)``. ``load_rates`` checks every row before it
writes any: a file with one bad line changes nothing and the errors name each line. The
current rate of a pair is its latest; a pair only quoted the other way round is served by the
inverse (1 / rate)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

import requests
from sqlalchemy import select

from app.core.errors import FieldError
from app.extensions import db
from app.forex.models import Currency, FxRate
from app.security.scoping import UNSCOPED

EIGHT_PLACES = Decimal("0.00000001")
MAX_RATE = Decimal("9999999999")
COLUMNS = ("base", "quote", "rate", "as_of")


@dataclass(frozen=True)
class RateRow:
    base: str
    quote: str
    rate: Decimal
    as_of: datetime


class RateFeed(Protocol):
    """Anything that can list the latest rates (a file, a provider's HTTP endpoint)."""

    name: str

    def fetch(self) -> list[dict[str, str]]: ...


class CsvRateFeed:
    """Rates from a CSV file with the columns ``base,quote,rate,as_of``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path.name}"

    def fetch(self) -> list[dict[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise FieldError(f"cannot read {self.path}: {exc.strerror}.", "file") from exc
        return rows_from_csv(text)


class HttpRateFeed:
    """Rates from a provider answering JSON ``{"rates": [{"base":..,"quote":..,"rate":..,
    "as_of":..}, ...]}`` or the same CSV as the file feed."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.name = f"http:{url}"[:60]

    def fetch(self) -> list[dict[str, str]]:
        try:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise FieldError(f"the rate provider did not answer: {exc}.", "feed") from exc
        if "json" in response.headers.get("Content-Type", ""):
            body = response.json()
            rows = body.get("rates") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise FieldError("the provider's answer has no list of rates.", "feed")
            return [row if isinstance(row, dict) else {} for row in rows]
        return rows_from_csv(response.text)


def rows_from_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FieldError(f"the file lacks the column(s) {', '.join(missing)}.", "file")
    return list(reader)


def parse_rate_row(raw: dict, known: set[str]) -> RateRow:
    """One rate checked: both currencies known, a positive rate of at most 8 places, an ISO
    time (UTC when it names no zone); ``ValueError`` naming the problem otherwise."""
    base = str(raw.get("base") or "").strip().upper()
    quote = str(raw.get("quote") or "").strip().upper()
    for code in (base, quote):
        if code not in known:
            raise ValueError(f"unknown currency {code or '(empty)'!r}")
    if base == quote:
        raise ValueError(f"{base}/{quote} is not a pair")
    try:
        rate = Decimal(str(raw.get("rate") or "").strip())
    except InvalidOperation:
        raise ValueError(f"rate {raw.get('rate')!r} is not a number") from None
    if not rate.is_finite() or not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate {raw.get('rate')!r} must be more than 0")
    if rate.quantize(EIGHT_PLACES, ROUND_HALF_EVEN) == 0:
        raise ValueError(f"rate {raw.get('rate')!r} is below 0.00000001")
    try:
        as_of = datetime.fromisoformat(str(raw.get("as_of") or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"as_of {raw.get('as_of')!r} is not a date and time") from None
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return RateRow(base, quote, rate.quantize(EIGHT_PLACES, ROUND_HALF_EVEN), as_of)


def load_rates(feed: RateFeed) -> list[FxRate]:
    """Check every row of the feed, then add those not already known (the caller commits); one
    bad row and nothing is added, with the errors by line (line 2 is the first after the
    header). Returns the rates added."""
    rows = feed.fetch()
    known = set(db.session.scalars(select(Currency.code), execution_options=UNSCOPED))
    parsed, errors = [], []
    for number, raw in enumerate(rows, start=2):
        try:
            parsed.append(parse_rate_row(raw, known))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise FieldError("; ".join(errors[:20]) + ("; ..." if len(errors) > 20 else ""), "rates")
    if not parsed:
        raise FieldError("the feed has no rates.", "rates")
    # A feed read twice (the periodic job re-reading an unchanged file) adds nothing new.
    seen = {
        (base, quote, as_of)
        for base, quote, as_of in db.session.execute(
            select(FxRate.base, FxRate.quote, FxRate.as_of).where(
                FxRate.as_of.in_({r.as_of for r in parsed})
            ),
            execution_options=UNSCOPED,
        )
    }
    added = []
    for r in parsed:
        if (r.base, r.quote, r.as_of) not in seen:
            seen.add((r.base, r.quote, r.as_of))
            added.append(
                FxRate(
                    base=r.base, quote=r.quote, rate=r.rate, as_of=r.as_of, source=feed.name[:60]
                )
            )
    db.session.add_all(added)
    db.session.flush()
    return added


def _latest(base: str, quote: str) -> FxRate | None:
    return db.session.scalars(
        select(FxRate)
        .where(FxRate.base == base, FxRate.quote == quote)
        .order_by(FxRate.as_of.desc(), FxRate.id.desc())
        .limit(1),
        execution_options=UNSCOPED,
    ).first()


def current_rate(base: str, quote: str) -> Decimal | None:
    """How many ``quote`` one ``base`` buys now (mid rate), or None when the pair has no rate
    either way. The pair's own latest rate wins; else the inverse of the other direction's."""
    if base == quote:
        return Decimal("1")
    direct = _latest(base, quote)
    if direct is not None:
        return direct.rate
    inverse = _latest(quote, base)
    if inverse is not None:
        return (Decimal(1) / inverse.rate).quantize(EIGHT_PLACES, ROUND_HALF_EVEN)
    return None


def require_rate(base: str, quote: str) -> Decimal:
    rate = current_rate(base, quote)
    if rate is None:
        raise FieldError(f"there is no rate for {base}/{quote}.", "buy_currency")
    return rate
