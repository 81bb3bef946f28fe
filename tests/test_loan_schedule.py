"""Repayment schedules: properties over every product's limits, checked against an independent
computation in exact fractions, plus fixed examples (the textbook mortgage, due dates, counts)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import FieldError
from app.lending.schedule import (
    annuity_instalment,
    build_schedule,
    due_date,
    instalment_count,
)

PERIODS = {"weekly": 52, "fortnightly": 26, "monthly": 12}

# (min amount, max amount, min rate %, max rate %, min term, max term) of each loan type.
PRODUCT_LIMITS = {
    "residential": ("50000", "5000000", "2", "10", 12, 360),
    "personal": ("5000", "100000", "5", "20", 6, 84),
    "commercial": ("100000", "10000000", "3", "12", 12, 300),
    "business": ("20000", "2000000", "4", "18", 6, 120),
}


def half_up_cents(value: Fraction) -> Decimal:
    """Round a non-negative exact fraction half up to the cent, without the code under test."""
    hundredths = value * 100
    whole = (2 * hundredths.numerator + hundredths.denominator) // (2 * hundredths.denominator)
    return Decimal(whole).scaleb(-2)


def exact_annuity(amount: Decimal, rate_percent: Decimal, count: int, frequency: str) -> Decimal:
    """P*r/(1-(1+r)^-n) in exact rational arithmetic, rounded half up to the cent."""
    r = Fraction(rate_percent) / 100 / PERIODS[frequency]
    principal = Fraction(amount)
    if r == 0:
        return half_up_cents(principal / count)
    growth = (1 + r) ** count
    return half_up_cents(principal * r * growth / (growth - 1))


def loans(loan_type: str):
    low, high, rate_low, rate_high, term_low, term_high = PRODUCT_LIMITS[loan_type]
    return st.tuples(
        st.integers(int(low) * 100, int(high) * 100).map(lambda c: Decimal(c).scaleb(-2)),
        st.integers(int(rate_low) * 100, int(rate_high) * 100).map(lambda b: Decimal(b).scaleb(-2)),
        st.integers(term_low, term_high),
        st.sampled_from(sorted(PERIODS)),
    )


def check_schedule(amount: Decimal, rate: Decimal, term: int, frequency: str) -> None:
    rows = build_schedule(amount, rate, term, frequency, date(2026, 1, 31))
    count = instalment_count(term, frequency)
    assert [row.number for row in rows] == list(range(1, count + 1))
    # The principal of the schedule is exactly the amount lent, and nothing is left owing.
    assert sum(row.principal for row in rows) == amount
    assert rows[-1].balance_after == 0
    # The instalment is the textbook annuity, computed independently, to the cent.
    expected = exact_annuity(amount, rate, count, frequency)
    assert annuity_instalment(amount, rate, count, frequency) == expected
    assert all(row.total == expected for row in rows[:-1])
    # Interest: the balance before each instalment times r, rounded half up; never negative.
    r = Fraction(rate) / 100 / PERIODS[frequency]
    balance = amount
    for row in rows:
        assert row.interest >= 0 and row.principal >= 0
        assert row.interest == half_up_cents(Fraction(balance) * r), row
        assert row.balance_after == balance - row.principal
        balance = row.balance_after


@pytest.mark.parametrize("loan_type", sorted(PRODUCT_LIMITS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_schedules_within_product_limits_are_exact(loan_type, data):
    check_schedule(*data.draw(loans(loan_type), label=loan_type))


@pytest.mark.parametrize(
    "amount, rate, term, frequency",
    [
        # The corners of every product: smallest and largest amount, rate and term.
        ("50000.00", "2.00", 12, "monthly"),
        ("5000000.00", "10.00", 360, "weekly"),
        ("5000.00", "20.00", 84, "weekly"),
        ("100000.00", "5.00", 6, "fortnightly"),
        ("10000000.00", "12.00", 300, "weekly"),
        ("100000.00", "3.00", 12, "monthly"),
        ("2000000.00", "18.00", 120, "weekly"),
        ("20000.00", "4.00", 6, "monthly"),
        # A balance whose interest is exactly half a cent (132.00 * 5.5% / 12 = 0.605).
        ("132.00", "5.50", 1, "monthly"),
    ],
)
def test_schedules_at_the_product_corners_are_exact(amount, rate, term, frequency):
    check_schedule(Decimal(amount), Decimal(rate), term, frequency)


def test_the_textbook_mortgage():
    # Hand check: r = 0.055 / 12 = 0.00458333...; (1 + r)^360 = 5.18738...;
    # A = 500,000 * 0.00458333 * 5.18738 / (5.18738 - 1) = 2,291.6667 * 1.238813 = 2,838.95.
    rows = build_schedule(Decimal("500000.00"), Decimal("5.5"), 360, "monthly", date(2026, 1, 15))
    assert len(rows) == 360
    assert rows[0].total == Decimal("2838.95")
    # First month: interest 500,000 * 0.00458333 = 2,291.67, so principal 547.28.
    assert rows[0].interest == Decimal("2291.67")
    assert rows[0].principal == Decimal("547.28")
    assert rows[0].due_date == date(2026, 2, 15)
    assert sum(row.principal for row in rows) == Decimal("500000.00")
    assert rows[-1].due_date == date(2056, 1, 15)


def test_monthly_due_dates_keep_month_ends():
    settled = date(2026, 1, 31)
    assert [due_date(settled, "monthly", n) for n in (1, 2, 3, 4)] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    assert due_date(date(2028, 1, 31), "monthly", 1) == date(2028, 2, 29)  # leap year
    rows = build_schedule(Decimal("60000.00"), Decimal("6"), 12, "monthly", settled)
    assert rows[0].due_date == date(2026, 2, 28) and rows[1].due_date == date(2026, 3, 31)
    assert rows[-1].due_date == date(2027, 1, 31)


def test_weekly_and_fortnightly_due_dates_step_by_days():
    settled = date(2026, 1, 31)
    assert due_date(settled, "weekly", 1) == date(2026, 2, 7)
    assert due_date(settled, "weekly", 52) == date(2027, 1, 30)
    assert due_date(settled, "fortnightly", 1) == date(2026, 2, 14)
    assert due_date(settled, "fortnightly", 26) == date(2027, 1, 30)


@pytest.mark.parametrize(
    "term, frequency, count",
    [
        (12, "weekly", 52),
        (12, "fortnightly", 26),
        (12, "monthly", 12),
        (6, "weekly", 26),
        (6, "fortnightly", 13),
        (7, "weekly", 30),  # 30.33 weeks
        (7, "fortnightly", 15),  # 15.17 fortnights
        (1, "weekly", 4),  # 4.33 weeks
        (1, "fortnightly", 2),  # 2.17 fortnights
        (360, "weekly", 1560),
        (360, "fortnightly", 780),
        (84, "weekly", 364),
    ],
)
def test_instalment_counts(term, frequency, count):
    assert instalment_count(term, frequency) == count
    rows = build_schedule(Decimal("50000.00"), Decimal("7.25"), term, frequency, date(2026, 3, 1))
    assert len(rows) == count


def test_zero_rate_splits_the_amount_evenly():
    rows = build_schedule(Decimal("12000.00"), Decimal("0"), 12, "monthly", date(2026, 1, 1))
    assert all(row.interest == 0 for row in rows)
    assert all(row.total == Decimal("1000.00") for row in rows)
    uneven = build_schedule(Decimal("100.00"), Decimal("0"), 3, "monthly", date(2026, 1, 1))
    assert [row.principal for row in uneven] == [
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("33.34"),
    ]
    assert all(row.interest == 0 for row in uneven)


@pytest.mark.parametrize(
    "amount, rate, term, frequency, field",
    [
        ("0", "5", 12, "monthly", "amount"),
        ("-100", "5", 12, "monthly", "amount"),
        ("100.001", "5", 12, "monthly", "amount"),
        ("1000", "-1", 12, "monthly", "interest_rate"),
        ("1000", "5", 0, "monthly", "term_months"),
        ("1000", "5", 12, "daily", "repayment_frequency"),
    ],
)
def test_impossible_schedules_are_refused(amount, rate, term, frequency, field):
    with pytest.raises(FieldError) as refused:
        build_schedule(Decimal(amount), Decimal(rate), term, frequency, date(2026, 1, 1))
    assert refused.value.field == field
