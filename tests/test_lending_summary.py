"""The lending dashboard reads the lending summaries: their numbers must be the loans' own.

Random applications are created (some settled, with their repayment schedule), moved between
stages, handed to a BDM of another branch, given or relieved of a broker, re-dated and re-sized;
repayments are recorded and the arrears job runs (a bulk update). Then, for every role's row
scope (all, a branch manager, a BDM, a broker) and random filters (period, branch, BDM, broker),
every number the lending charts show is compared with the same number computed here from the
applications and instalments themselves. The same must hold after compaction and after rebuild.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.dashboards.base import money
from app.dashboards.lending_summary import (
    ApplicationSummary,
    InstalmentSummary,
    lending_figures,
)
from app.dashboards.summary import compact, rebuild
from app.extensions import db
from app.lending.jobs import update_arrears
from app.lending.models import STAGES, LoanApplication, LoanInstalment
from app.lending.servicing import outstanding, record_repayment
from app.security.scoping import Actor, acting_as
from tests.lending_support import make_application, make_broker, make_product, make_settled_loan
from tests.support import login, make_branch, make_staff

FIRST_DAY = date(2026, 3, 20)
"""Applications are created over about four months from here; settled loans fall due after."""
TODAY = date(2026, 12, 1)
OPEN_STAGES = [s for s in STAGES if s not in ("settled", "closed")]


@pytest.fixture(params=["app", "pg_app"])
def on_each_database(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def desk(on_each_database):
    home, other = make_branch(), make_branch()
    people = {
        "manager": make_staff("Manager", home),
        "bdm": make_staff("LoanOfficer", home),
        "colleague": make_staff("LoanOfficer", home),
        "stranger": make_staff("LoanOfficer", other),
        "introducer": make_staff("Broker", home),
    }
    brokers = {
        "mine": make_broker(home, user=people["introducer"]),
        "theirs": make_broker(other),
    }
    product = make_product(min_term_months=6)
    db.session.commit()
    return {"people": people, "brokers": brokers, "product": product, "home": home.id}


# ---- the same numbers from the rows themselves ------------------------------------------------


def _bucket(counts: dict, key, amount) -> None:
    n, total = counts.get(key, (0, Decimal("0.00")))
    counts[key] = (n + 1, total + money(amount))


def raw_figures(date_from, date_to, due_from, due_to, branch, bdm, broker) -> dict:
    """What the charts must show, from the applications and instalments the reader sees."""

    def ours(application: LoanApplication) -> bool:
        return (
            (branch is None or application.branch_id == branch)
            and (bdm is None or application.bdm_id == bdm)
            and (broker is None or application.broker_id == broker)
        )

    figures = {name: {} for name in ("by_stage", "by_month", "by_bdm", "arrears", "timeliness")}
    applications = {a.id: a for a in db.session.scalars(select(LoanApplication))}
    for a in applications.values():
        if not ours(a):
            continue
        if a.stage == "settled":
            _bucket(figures["arrears"], a.arrears_bucket, a.amount)
        created = a.created_at.astimezone(UTC).date()
        if (date_from and created < date_from) or (date_to and created > date_to):
            continue
        _bucket(figures["by_stage"], a.stage, a.amount)
        _bucket(figures["by_month"], created.strftime("%Y-%m"), a.amount)
        _bucket(figures["by_bdm"], a.bdm_id, a.amount)
    for i in db.session.scalars(select(LoanInstalment)):
        a = applications.get(i.application_id)
        if a is None or not ours(a) or i.due_date > due_to:
            continue
        if due_from and i.due_date < due_from:
            continue
        if i.status == "paid":
            kind = "on_time" if i.paid_on <= i.due_date else "paid_late"
        else:
            kind = "unpaid"
        _bucket(figures["timeliness"], kind, i.total)
    return figures


def summary_figures(*args) -> dict:
    found = lending_figures(*args)
    return {
        "by_stage": found.by_stage,
        "by_month": found.by_month,
        "by_bdm": {row[0]: (row[4], row[5]) for row in found.by_bdm},
        "arrears": found.arrears,
        "timeliness": found.timeliness,
    }


# ---- random books ---------------------------------------------------------------------------

BDMS = ("bdm", "colleague", "stranger")
new_application = st.tuples(
    st.sampled_from(BDMS),
    st.sampled_from([None, "mine", "theirs"]),
    st.integers(0, 120),  # day created
    st.sampled_from([*OPEN_STAGES, "settled", "settled"]),
    st.integers(60, 400),  # thousands asked for
)
change = st.tuples(
    st.sampled_from(["stage", "move", "broker", "redate", "resize", "repay", "arrears"]),
    st.integers(0, 30),  # which application
    st.integers(0, 200),  # a day, a size or a share
    st.sampled_from([*OPEN_STAGES, *BDMS, None, "mine", "theirs"]),
)
filters = st.tuples(
    st.one_of(st.none(), st.integers(-10, 150)),
    st.one_of(st.none(), st.integers(-10, 150)),
    st.sampled_from([None, "home", "other"]),
    st.sampled_from([None, *BDMS]),
    st.sampled_from([None, "mine", "theirs"]),
)


def _apply(desk, applications, changes) -> list[LoanApplication]:
    people, brokers = desk["people"], desk["brokers"]
    made = []
    for who, broker, day, stage, size in applications:
        created = datetime.combine(FIRST_DAY + timedelta(days=day), time(9), UTC)
        fields = {
            "product": desk["product"],
            "broker": brokers[broker] if broker else None,
            "amount": Decimal(size * 1000) + Decimal("0.55"),
            "term_months": 6,
            "created_at": created,
        }
        if stage == "settled":
            made.append(
                make_settled_loan(people[who], created.date() + timedelta(days=3), **fields)
            )
        else:
            made.append(make_application(people[who], stage=stage, **fields))
    db.session.commit()
    for kind, which, number, choice in changes:
        if kind == "arrears":
            update_arrears(FIRST_DAY + timedelta(days=number + 30))
            continue
        if not made:
            continue
        application = made[which % len(made)]
        settled = application.stage == "settled"
        if kind == "stage" and not settled and choice in OPEN_STAGES:
            application.stage = choice
        elif kind == "move" and choice in BDMS:
            application.bdm_id = people[choice].user_id
            application.branch_id = people[choice].branch_id
        elif kind == "broker" and choice in (None, "mine", "theirs"):
            application.broker_id = brokers[choice].id if choice else None
        elif kind == "redate":
            application.created_at = datetime.combine(
                FIRST_DAY + timedelta(days=number % 121), time(23, 30), UTC
            )
        elif kind == "resize" and not settled:
            application.amount = Decimal(60_000 + number * 1000)
        elif kind == "repay" and settled:
            owed = outstanding(application)
            if owed > 0:
                paid = min(owed, (owed * (number % 60 + 5) / 100).quantize(Decimal("0.01")))
                received = application.settled_on + timedelta(days=number)
                record_repayment(application, paid, min(received, TODAY), today=TODAY)
        db.session.commit()
    return made


def _check_every_scope(desk, checks) -> None:
    people, brokers = desk["people"], desk["brokers"]
    home = desk["home"]
    branches = {None: None, "home": home, "other": people["stranger"].branch_id}
    readers = {
        "admin": None,
        "manager": Actor(people["manager"].user_id, frozenset({"Manager"}), home),
        "bdm": Actor(people["bdm"].user_id, frozenset({"LoanOfficer"}), home),
        "broker": Actor(people["introducer"].user_id, frozenset({"Broker"}), home),
    }
    for start, end, branch, bdm, broker in checks:
        date_from = FIRST_DAY + timedelta(days=start) if start is not None else None
        date_to = FIRST_DAY + timedelta(days=end) if end is not None else None
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from
        due_to = min(date_to + timedelta(days=120), TODAY) if date_to else TODAY
        args = (
            date_from,
            date_to,
            date_from,
            due_to,
            branches[branch],
            people[bdm].user_id if bdm else None,
            brokers[broker].id if broker else None,
        )
        for name, actor in readers.items():
            if actor is None:
                expected, found = raw_figures(*args), summary_figures(*args)
            else:
                with acting_as(actor):
                    expected, found = raw_figures(*args), summary_figures(*args)
            assert found == expected, (name, args)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    applications=st.lists(new_application, min_size=1, max_size=8),
    changes=st.lists(change, min_size=2, max_size=14),
    checks=st.lists(filters, min_size=1, max_size=3),
)
def test_every_lending_chart_number_from_the_summaries_is_the_loans_own(
    desk, applications, changes, checks
):
    # The books of earlier examples stay: both sides count every row the reader sees.
    _apply(desk, applications, changes)
    checks = [*checks, (None, None, None, None, None)]
    _check_every_scope(desk, checks)
    compact(db.session)
    db.session.commit()
    for model in (ApplicationSummary, InstalmentSummary):
        pending = db.session.scalar(
            select(func.count()).select_from(model).where(model.compacted.is_(False))
        )
        assert pending == 0
    _check_every_scope(desk, checks)
    rebuild(db.session)
    db.session.commit()
    _check_every_scope(desk, checks)


def test_the_arrears_job_moves_a_loan_between_buckets_on_the_dashboard(on_each_database, desk):
    loan = make_settled_loan(
        desk["people"]["bdm"], date(2026, 6, 1), product=desk["product"], term_months=6
    )
    db.session.commit()
    everything = (None, None, None, TODAY, None, None, None)
    assert summary_figures(*everything)["arrears"] == {"current": (1, money(loan.amount))}
    update_arrears(date(2026, 8, 15))  # the July instalment is past due, nothing paid
    assert summary_figures(*everything) == raw_figures(*everything)
    assert set(summary_figures(*everything)["arrears"]) == {"31-60"}


def test_a_loan_handed_to_another_branch_takes_its_instalments_along(on_each_database, desk):
    people = desk["people"]
    loan = make_settled_loan(
        people["bdm"], date(2026, 6, 1), product=desk["product"], term_months=6
    )
    db.session.commit()
    home = (None, None, None, TODAY, desk["home"], None, None)
    due = summary_figures(*home)["timeliness"]["unpaid"][0]
    assert due == 6
    loan.bdm_id, loan.branch_id = people["stranger"].user_id, people["stranger"].branch_id
    db.session.commit()
    assert "unpaid" not in summary_figures(*home)["timeliness"]
    theirs = (None, None, None, TODAY, people["stranger"].branch_id, None, None)
    assert summary_figures(*theirs)["timeliness"]["unpaid"][0] == due
    assert summary_figures(*theirs) == raw_figures(*theirs)


def test_the_lending_dashboard_shows_an_application_as_soon_as_it_is_saved(on_each_database, desk):
    """No job has to run first, and a bar still opens the list of exactly what it counts; the
    BDM of another branch is not counted for this branch's BDM."""
    from tests.test_dashboards import open_dashboard, record_count

    people = desk["people"]
    client = on_each_database.test_client()
    assert login(client, people["bdm"].user.username).status_code == 302
    before = open_dashboard(client, "lending")["applications-by-stage"]["Assessment"][0]
    make_application(people["bdm"], product=desk["product"], stage="assessment")
    make_application(people["stranger"], product=desk["product"], stage="assessment")
    db.session.commit()
    count, _, url = open_dashboard(client, "lending")["applications-by-stage"]["Assessment"]
    assert (before, count) == (0, 1)
    assert record_count(client, url) == 1


def test_the_rebuild_command_counts_every_summary_anew(on_each_database, desk):
    loan = make_settled_loan(
        desk["people"]["bdm"], date(2026, 6, 1), product=desk["product"], term_months=6
    )
    db.session.commit()
    everything = (None, None, None, TODAY, None, None, None)
    before = summary_figures(*everything)
    db.session.execute(InstalmentSummary.__table__.delete())  # as if the summary were lost
    db.session.commit()
    assert summary_figures(*everything)["timeliness"] == {}
    result = on_each_database.test_cli_runner().invoke(args=["crm", "rebuild-summaries"])
    assert result.exit_code == 0, result.output
    for table in ("summary_lead", "summary_application", "summary_instalment", "summary_client"):
        assert f"{table} rebuilt:" in result.output
    db.session.expire_all()
    assert summary_figures(*everything) == before
    assert before["timeliness"]["unpaid"][1] == sum(
        i.total
        for i in db.session.scalars(select(LoanInstalment).filter_by(application_id=loan.id))
    )
