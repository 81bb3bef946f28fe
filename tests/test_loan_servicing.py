"""Servicing a settled loan: the disbursement, repayments allocated to the schedule (oldest due
first, interest before principal, paying ahead, never beyond the payoff), fees charged and paid,
the ledger that records it all, and two simultaneous repayments on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.core.errors import ConflictError, FieldError
from app.extensions import db
from app.ledger import services as ledger
from app.ledger.models import JournalEntry, JournalLine
from app.lending.models import (
    LoanApplication,
    LoanFee,
    LoanInstalment,
    LoanProductFee,
    LoanRepayment,
    LoanRepaymentAllocation,
)
from app.lending.servicing import (
    charge_fee,
    charge_product_fees,
    outstanding,
    pay_fee,
    record_repayment,
    settle,
)
from tests.lending_support import make_application, make_product, make_settled_loan
from tests.support import count, make_branch, make_staff

D = Decimal
SETTLED = date(2026, 1, 15)
# 12,000.00 at 12% a year over 12 months: r = 1% a month and
# A = 12,000 * 0.01 / (1 - 1.01^-12) = 1,066.1854... -> 1,066.19.
# Instalment 1 (due 15 Feb): interest 120.00, principal 946.19, balance 11,053.81.
# Instalment 2 (due 15 Mar): interest 110.54 (110.5381), principal 955.65, balance 10,098.16.
# Instalment 3 (due 15 Apr): interest 100.98 (100.9816), principal 965.21.
# Instalment 4 (due 15 May): interest  91.33 ( 91.3295), principal 974.86.
A = D("1066.19")


def new_loan(bdm=None) -> LoanApplication:
    bdm = bdm or make_staff("LoanOfficer", make_branch(tz="UTC"))
    loan = make_settled_loan(
        bdm, SETTLED, amount=D("12000.00"), term_months=12, interest_rate=D("12")
    )
    db.session.commit()
    return loan


@pytest.fixture
def bdm(app):
    return make_staff("LoanOfficer", make_branch(tz="UTC"))


@pytest.fixture
def loan(bdm):
    return new_loan(bdm)


def instalments(loan: LoanApplication) -> list[LoanInstalment]:
    return list(
        db.session.scalars(
            select(LoanInstalment)
            .where(LoanInstalment.application_id == loan.id)
            .order_by(LoanInstalment.number)
        )
    )


def lines_of(entry_id: int) -> dict[str, tuple[Decimal, Decimal]]:
    """{account code: (debit, credit)} of one journal entry."""
    entry = db.session.get(JournalEntry, entry_id)
    return {line.account.code: (line.debit, line.credit) for line in entry.lines}


def written() -> tuple[int, ...]:
    return tuple(
        count(model)
        for model in (LoanRepayment, LoanRepaymentAllocation, JournalEntry, JournalLine, LoanFee)
    )


def paid_state(loan: LoanApplication) -> list[tuple]:
    return [
        (i.number, i.paid_interest, i.paid_principal, i.status, i.paid_on)
        for i in instalments(loan)
    ]


# ---- settlement ----


def test_settlement_creates_the_schedule_and_posts_the_disbursement(loan):
    schedule = instalments(loan)
    assert len(schedule) == 12
    assert sum(i.principal for i in schedule) == D("12000.00")
    assert (schedule[0].due_date, schedule[0].interest, schedule[0].principal) == (
        date(2026, 2, 15),
        D("120.00"),
        D("946.19"),
    )
    assert all(i.total == A for i in schedule[:-1])
    assert all(i.status == "scheduled" and i.paid == 0 for i in schedule)
    assert loan.instalment_amount == A and loan.settled_on == SETTLED
    [entry] = ledger.entries_for(loan)
    assert entry.entry_date == SETTLED
    assert lines_of(entry.id) == {
        ledger.LOANS_RECEIVABLE: (D("12000.00"), D("0.00")),
        ledger.CASH: (D("0.00"), D("12000.00")),
    }
    assert outstanding(loan) == sum(i.total for i in schedule)


def test_a_loan_is_settled_once(loan):
    before = written(), count(LoanInstalment)
    with pytest.raises(ConflictError) as refused:
        settle(loan, date(2026, 2, 1))
    assert "already settled on 2026-01-15" in str(refused.value)
    assert (written(), count(LoanInstalment)) == before


# ---- repayments ----


def test_one_instalment_pays_instalment_one_interest_first(loan):
    payoff = outstanding(loan)
    repayment = record_repayment(
        loan, "1066.19", date(2026, 2, 15), reference="BT-1", today=date(2026, 2, 15)
    )
    db.session.commit()
    assert (repayment.amount, repayment.interest_part, repayment.principal_part) == (
        A,
        D("120.00"),
        D("946.19"),
    )
    assert repayment.method == "bank_transfer" and repayment.reference == "BT-1"
    assert repayment.recorded_by_id is None  # no signed-in user outside a request
    states = paid_state(loan)
    assert states[0] == (1, D("120.00"), D("946.19"), "paid", date(2026, 2, 15))
    assert all(state[1:4] == (0, 0, "scheduled") for state in states[1:])
    [allocation] = repayment.allocations
    assert (allocation.instalment.number, allocation.interest, allocation.principal) == (
        1,
        D("120.00"),
        D("946.19"),
    )
    # One entry, interest and principal apart, sourced from the application.
    assert lines_of(repayment.journal_entry_id) == {
        ledger.CASH: (A, D("0.00")),
        ledger.INTEREST_INCOME: (D("0.00"), D("120.00")),
        ledger.LOANS_RECEIVABLE: (D("0.00"), D("946.19")),
    }
    entry = db.session.get(JournalEntry, repayment.journal_entry_id)
    assert (entry.source_type, entry.source_id, entry.entry_date) == (
        "loan_application",
        loan.id,
        date(2026, 2, 15),
    )
    assert outstanding(loan) == payoff - A


@pytest.mark.parametrize(
    "amount, received, today, paid_interest, paid_principal, status",
    [
        ("200.00", date(2026, 2, 10), date(2026, 2, 10), "120.00", "80.00", "partial"),
        ("100.00", date(2026, 2, 10), date(2026, 2, 10), "100.00", "0.00", "partial"),
        # Due on 15 Feb: paid short afterwards, what is left of it is late.
        ("100.00", date(2026, 3, 1), date(2026, 3, 1), "100.00", "0.00", "late"),
        ("500.00", date(2026, 2, 20), date(2026, 2, 20), "120.00", "380.00", "late"),
    ],
)
def test_a_partial_payment_pays_interest_before_principal(
    loan, amount, received, today, paid_interest, paid_principal, status
):
    repayment = record_repayment(loan, D(amount), received, method="direct_debit", today=today)
    db.session.commit()
    first, second = instalments(loan)[:2]
    assert (first.paid_interest, first.paid_principal, first.status, first.paid_on) == (
        D(paid_interest),
        D(paid_principal),
        status,
        None,
    )
    assert second.paid == 0 and second.status == "scheduled"
    assert (repayment.interest_part, repayment.principal_part) == (
        D(paid_interest),
        D(paid_principal),
    )
    expected = {
        ledger.CASH: (D(amount), D("0.00")),
        ledger.INTEREST_INCOME: (D("0.00"), D(paid_interest)),
    }
    if D(paid_principal):  # a zero leg is not written
        expected[ledger.LOANS_RECEIVABLE] = (D("0.00"), D(paid_principal))
    assert lines_of(repayment.journal_entry_id) == expected


def test_a_payment_covering_two_late_instalments_pays_the_oldest_first(loan):
    today = date(2026, 3, 20)  # instalments 1 (15 Feb) and 2 (15 Mar) are overdue
    repayment = record_repayment(loan, A + D("500.00"), today, today=today)
    db.session.commit()
    states = paid_state(loan)
    assert states[0] == (1, D("120.00"), D("946.19"), "paid", today)
    # 500.00 left for instalment 2: its 110.54 interest first, 389.46 of its principal.
    assert states[1] == (2, D("110.54"), D("389.46"), "late", None)
    assert states[2][1:4] == (0, 0, "scheduled")
    allocations = sorted(
        (a.instalment.number, a.interest, a.principal) for a in repayment.allocations
    )
    assert allocations == [(1, D("120.00"), D("946.19")), (2, D("110.54"), D("389.46"))]
    assert (repayment.interest_part, repayment.principal_part) == (
        D("230.54"),
        D("1335.65"),
    )
    # Another payment goes on with instalment 2 before anything else.
    second = record_repayment(loan, "600.00", today, today=today)
    db.session.commit()
    assert paid_state(loan)[1] == (2, D("110.54"), D("955.65"), "paid", today)
    assert paid_state(loan)[2] == (3, D("33.81"), D("0.00"), "partial", None)
    assert (second.interest_part, second.principal_part) == (D("33.81"), D("566.19"))


def test_a_payment_beyond_what_is_due_pays_the_next_instalments_ahead(pg_app):
    # On PostgreSQL: see the SQLite test below for why not there.
    loan = new_loan()
    received = date(2026, 2, 1)  # nothing is due before 15 Feb
    repayment = record_repayment(loan, 3 * A + D("100.00"), received, today=received)
    db.session.commit()
    states = paid_state(loan)
    assert [s[3] for s in states[:5]] == ["paid", "paid", "paid", "partial", "scheduled"]
    assert all(s[4] == received for s in states[:3])
    assert states[3] == (4, D("91.33"), D("8.67"), "partial", None)
    assert (repayment.interest_part, repayment.principal_part) == (
        D("120.00") + D("110.54") + D("100.98") + D("91.33"),
        D("946.19") + D("955.65") + D("965.21") + D("8.67"),
    )
    assert [a.instalment.number for a in repayment.allocations] == [1, 2, 3, 4]


def test_a_split_whose_float_sum_is_inexact_is_still_recorded(loan):
    """SQLite keeps numerics as binary floats: 422.85 + 2875.72 is not exactly 3298.57 there,
    so the allocation check compares cents."""
    received = date(2026, 2, 1)
    repayment = record_repayment(loan, 3 * A + D("100.00"), received, today=received)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(type(repayment), repayment.id)
    assert stored.interest_part + stored.principal_part == 3 * A + D("100.00")


def test_more_than_the_payoff_is_refused_naming_it_and_writes_nothing(loan):
    record_repayment(loan, "500.00", date(2026, 2, 20), today=date(2026, 2, 20))
    db.session.commit()
    payoff = outstanding(loan)
    before, states = written(), paid_state(loan)
    with pytest.raises(FieldError) as refused:
        record_repayment(loan, payoff + D("0.01"), date(2026, 2, 21), today=date(2026, 2, 21))
    assert refused.value.field == "amount" and refused.value.status == 422
    assert str(payoff) in refused.value.message
    db.session.commit()
    assert written() == before and paid_state(loan) == states
    # The payoff itself is accepted and clears the loan; after that nothing more is taken.
    record_repayment(loan, payoff, date(2026, 2, 21), today=date(2026, 2, 21))
    db.session.commit()
    assert outstanding(loan) == 0
    assert all(state[3] == "paid" for state in paid_state(loan))
    with pytest.raises(ConflictError, match="fully repaid"):
        record_repayment(loan, "0.01", date(2026, 2, 22), today=date(2026, 2, 22))


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "-1",
        "1.001",
        "NaN",
        "1e309",
        "Infinity",
        "12 dollars",
        "",
        D("0"),
        D("-1"),
        D("1.001"),
        D("NaN"),
        D("1e309"),
        D("-Infinity"),
        1.005,
        True,
        None,
    ],
)
def test_bad_amounts_are_refused(loan, amount):
    before, states = written(), paid_state(loan)
    with pytest.raises(FieldError) as refused:
        record_repayment(loan, amount, date(2026, 2, 15), today=date(2026, 2, 15))
    assert refused.value.field == "amount"
    db.session.commit()
    assert written() == before and paid_state(loan) == states


@pytest.mark.parametrize(
    "change, error, field",
    [
        ({"method": "bitcoin"}, FieldError, "method"),
        ({"received_on": date(2026, 1, 14)}, FieldError, "received_on"),  # before settlement
        ({"received_on": date(2026, 2, 16)}, FieldError, "received_on"),  # after today
        ({"received_on": "2026-02-15"}, FieldError, "received_on"),
        ({"reference": "x" * 101}, FieldError, "reference"),
    ],
)
def test_bad_repayment_details_are_refused(loan, change, error, field):
    values = {"amount": "100.00", "received_on": date(2026, 2, 15), "today": date(2026, 2, 15)}
    values.update(change)
    before = written()
    with pytest.raises(error) as refused:
        record_repayment(loan, **values)
    assert refused.value.field == field
    assert written() == before


def test_an_unsettled_loan_takes_no_repayment(bdm):
    application = make_application(bdm, amount=D("60000.00"), term_months=12)
    db.session.commit()
    before = written()
    with pytest.raises(ConflictError) as refused:
        record_repayment(application, "100.00", date(2026, 2, 1), today=date(2026, 2, 1))
    assert refused.value.field == "stage" and "not settled" in refused.value.message
    assert written() == before


def test_the_signed_in_user_is_recorded(app, loan, bdm):
    from flask_login import login_user

    with app.test_request_context():
        login_user(bdm.user)
        repayment = record_repayment(loan, "100.00", date(2026, 2, 1), today=date(2026, 2, 1))
        db.session.commit()
        assert repayment.recorded_by_id == bdm.user_id
        entry = db.session.get(JournalEntry, repayment.journal_entry_id)
        assert entry.created_by_id == bdm.user_id


# ---- fees ----


def test_fees_are_charged_then_paid_once(loan):
    fee = charge_fee(loan, "valuation", "550.00")
    db.session.commit()
    assert (fee.status, fee.amount, fee.paid_on) == ("waiting", D("550.00"), None)
    assert lines_of(fee.charge_entry_id) == {
        ledger.FEES_RECEIVABLE: (D("550.00"), D("0.00")),
        ledger.FEE_INCOME: (D("0.00"), D("550.00")),
    }
    pay_fee(fee, date(2026, 2, 3), today=date(2026, 2, 3))
    db.session.commit()
    assert (fee.status, fee.paid_on) == ("paid", date(2026, 2, 3))
    assert lines_of(fee.payment_entry_id) == {
        ledger.CASH: (D("550.00"), D("0.00")),
        ledger.FEES_RECEIVABLE: (D("0.00"), D("550.00")),
    }
    assert {e.id for e in ledger.entries_for(loan)} >= {fee.charge_entry_id, fee.payment_entry_id}
    before = written()
    with pytest.raises(ConflictError) as refused:
        pay_fee(fee, date(2026, 2, 4), today=date(2026, 2, 4))
    assert refused.value.status == 409 and "already paid on 2026-02-03" in refused.value.message
    assert written() == before


@pytest.mark.parametrize(
    "fee_type, amount, field",
    [
        ("bribe", "10.00", "fee_type"),
        ("legal", "0", "amount"),
        ("legal", "-5", "amount"),
        ("legal", "10.005", "amount"),
        ("legal", "NaN", "amount"),
    ],
)
def test_bad_fees_are_refused(loan, fee_type, amount, field):
    before = written()
    with pytest.raises(FieldError) as refused:
        charge_fee(loan, fee_type, amount)
    assert refused.value.field == field
    assert written() == before


def test_a_fee_cannot_be_paid_in_the_future(loan):
    fee = charge_fee(loan, "legal", "300.00")
    db.session.commit()
    with pytest.raises(FieldError) as refused:
        pay_fee(fee, date(2026, 3, 2), today=date(2026, 3, 1))
    assert refused.value.field == "paid_on"
    assert fee.status == "waiting"


def test_the_products_fees_are_charged_one_per_template(bdm):
    product = make_product()
    product.fee_templates = [
        LoanProductFee(fee_type="application", amount=D("600.00")),
        LoanProductFee(fee_type="settlement", amount=D("250.00")),
    ]
    application = make_application(bdm, product=product)
    fees = charge_product_fees(application)
    db.session.commit()
    assert [(f.fee_type, f.amount, f.status) for f in fees] == [
        ("application", D("600.00"), "waiting"),
        ("settlement", D("250.00"), "waiting"),
    ]
    assert all(f.charge_entry_id is not None for f in fees)
    assert len(ledger.entries_for(application)) == 2


# ---- the books ----


def test_the_trial_balance_balances_after_a_loans_life(loan):
    fee = charge_fee(loan, "application", "600.00")
    charge_fee(loan, "legal", "400.00")
    pay_fee(fee, date(2026, 1, 20), today=date(2026, 1, 20))
    payments = [
        (date(2026, 2, 15), "1066.19"),
        (date(2026, 3, 20), "500.00"),
        (date(2026, 4, 2), "2000.00"),
        (date(2026, 4, 30), "0.01"),
    ]
    for received, amount in payments:
        record_repayment(loan, amount, received, method="card", today=received)
    db.session.commit()
    rows = {row.code: row for row in ledger.trial_balance()}
    assert sum(row.debit for row in rows.values()) == sum(row.credit for row in rows.values())
    repaid = sum(D(amount) for _, amount in payments)
    repayments = list(
        db.session.scalars(select(LoanRepayment).where(LoanRepayment.application_id == loan.id))
    )
    interest = sum(r.interest_part for r in repayments)
    principal = sum(r.principal_part for r in repayments)
    assert interest + principal == repaid
    assert rows[ledger.CASH].balance == -D("12000.00") + D("600.00") + repaid
    assert rows[ledger.LOANS_RECEIVABLE].balance == D("12000.00") - principal
    assert rows[ledger.INTEREST_INCOME].balance == -interest
    assert rows[ledger.FEES_RECEIVABLE].balance == D("400.00")
    assert rows[ledger.FEE_INCOME].balance == -D("1000.00")
    # What the ledger says is owed in principal is what the schedule says is left of it.
    schedule = instalments(loan)
    assert sum(i.principal - i.paid_principal for i in schedule) == D("12000.00") - principal
    assert outstanding(loan) == sum(i.total for i in schedule) - repaid


# ---- concurrency (PostgreSQL row locks) ----


def test_two_simultaneous_repayments_beyond_the_payoff_one_is_refused(pg_app):
    loan = new_loan()
    loan_id, payoff = loan.id, outstanding(loan)
    each = payoff - D("1000.00")  # either alone is fine, both together exceed the payoff
    start = threading.Barrier(2)
    outcomes = []

    def repay():
        with pg_app.app_context():
            try:
                application = db.session.get(LoanApplication, loan_id)
                start.wait()
                record_repayment(application, each, date(2026, 2, 15), today=date(2026, 2, 15))
                db.session.commit()
                outcomes.append("recorded")
            except Exception as exc:  # the second, once it sees what the first paid
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=repay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["FieldError", "recorded"]
    db.session.expire_all()
    assert count(LoanRepayment) == 1
    assert outstanding(loan) == D("1000.00")
    rows = ledger.trial_balance()
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows)


def test_the_loan_page_lists_every_tab_in_order_at_the_same_cost_however_long(client, loan, bdm):
    import re

    from app.lending.models import LoanNote
    from tests.support import login
    from tests.test_statement_budget import counting

    login(client, bdm.user.username)
    show = f"/loanapplicationview/show/{loan.id}"

    def page() -> tuple[int, str]:
        with counting() as statements:
            text = client.get(show).get_data(as_text=True)
        return len(statements), text

    def tab(text: str, name: str) -> str:
        start = text.index(f'id="tab-{name}"')
        return text[start : text.index('class="tab-pane', start + 1)]

    first_cost, _ = page()
    for n, received in enumerate((date(2026, 2, 15), date(2026, 3, 15), date(2026, 4, 15))):
        db.session.add(
            LoanNote(application_id=loan.id, body=f"Call {n + 1}", author_id=bdm.user_id)
        )
        record_repayment(loan, "1066.19", received, reference=f"BT-{n + 1}", today=date(2026, 5, 1))
    db.session.commit()
    cost, text = page()
    assert cost == first_cost <= 8  # three notes and repayments cost what none did
    assert re.findall(r"<td>(Call \d)</td>", tab(text, "notes")) == ["Call 3", "Call 2", "Call 1"]
    assert tab(text, "notes").count(f"<td>{bdm.user.username}</td>") == 3
    schedule = re.findall(r'<tr class="instalment-(\w+)"><td>(\d+)</td>', tab(text, "schedule"))
    assert [int(number) for _, number in schedule] == list(range(1, 13))
    assert [status for status, _ in schedule[:4]] == ["paid"] * 3 + ["scheduled"]
    assert re.findall(r"<td>(BT-\d)</td>", tab(text, "repayments")) == ["BT-3", "BT-2", "BT-1"]
    assert tab(text, "parties").count("<td>borrower</td>") == 1
