"""Repayment schedules: equal instalments on a declining balance (an annuity).

For a loan of ``P`` at an annual rate ``R`` percent repaid in ``n`` instalments of a frequency
with ``f`` periods a year, the periodic rate is ``r = R / 100 / f`` and the instalment is the
standard annuity ``A = P * r / (1 - (1 + r) ** -n)`` (``P / n`` when ``r`` is 0), rounded half up
to the cent. Each instalment's interest is the balance before it times ``r``, rounded half up;
its principal is the rest of ``A``. The last instalment takes whatever principal remains, so the
principal of the schedule sums to ``P`` to the cent, and its interest is charged on that balance.

500,000.00 at 5.5% over 360 monthly instalments: ``A`` = 2,838.95.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from dateutil.relativedelta import relativedelta

from app.core.errors import FieldError

CENT = Decimal("0.01")
PERIODS_PER_YEAR = {"weekly": 52, "fortnightly": 26, "monthly": 12}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ScheduledInstalment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    balance_after: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


def instalment_count(term_months: int, frequency: str) -> int:
    """How many instalments a term in months makes at a frequency (26 fortnights a year)."""
    periods = Decimal(term_months * PERIODS_PER_YEAR[frequency]) / 12
    return max(1, int(periods.quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def periodic_rate(annual_rate_percent: Decimal, frequency: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return Decimal(annual_rate_percent) / 100 / PERIODS_PER_YEAR[frequency]


def annuity_instalment(amount: Decimal, annual_rate_percent: Decimal, count: int, frequency: str):
    """The equal instalment of the standard annuity formula, to the cent."""
    rate = periodic_rate(annual_rate_percent, frequency)
    with localcontext() as ctx:
        ctx.prec = 40
        if rate == 0:
            exact = Decimal(amount) / count
        else:
            exact = Decimal(amount) * rate / (1 - (1 + rate) ** -count)
    return cents(exact)


def due_date(first_period_start: date, frequency: str, number: int) -> date:
    """The due date of instalment ``number`` (1-based) of a loan settled on ``first_period_start``:
    one period after settlement, then every period (month ends kept: 31 Jan -> 28/29 Feb)."""
    if frequency == "monthly":
        return first_period_start + relativedelta(months=number)
    days = 7 if frequency == "weekly" else 14
    return first_period_start + timedelta(days=days * number)


def build_schedule(
    amount: Decimal,
    annual_rate_percent: Decimal,
    term_months: int,
    frequency: str,
    settled_on: date,
) -> list[ScheduledInstalment]:
    """The whole schedule. Refused (``FieldError``) when the inputs cannot make one."""
    if frequency not in PERIODS_PER_YEAR:
        raise FieldError(f"must be one of {', '.join(PERIODS_PER_YEAR)}.", "repayment_frequency")
    amount = Decimal(amount)
    if amount <= 0 or amount != cents(amount):
        raise FieldError("must be a positive amount in whole cents.", "amount")
    if term_months < 1:
        raise FieldError("must be at least one month.", "term_months")
    if Decimal(annual_rate_percent) < 0:
        raise FieldError("cannot be negative.", "interest_rate")
    count = instalment_count(term_months, frequency)
    rate = periodic_rate(annual_rate_percent, frequency)
    payment = annuity_instalment(amount, annual_rate_percent, count, frequency)
    balance = amount
    rows: list[ScheduledInstalment] = []
    for number in range(1, count + 1):
        interest = cents(balance * rate)
        principal = balance if number == count else payment - interest
        if principal < 0 or principal > balance:
            raise FieldError(
                "is too small to be repaid in equal instalments at this rate, term and "
                "frequency (rounding to the cent would overtake the balance).",
                "amount",
            )
        balance -= principal
        rows.append(
            ScheduledInstalment(
                number, due_date(settled_on, frequency, number), principal, interest, balance
            )
        )
    return rows
