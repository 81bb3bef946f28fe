"""The sales dashboard reads the lead summary: its numbers must be the leads' own.

Random leads are created (one by one through the ORM and in bulk as an import does), moved
between statuses, reassigned to an agent of another branch, re-dated and deleted; then, for
every role's row scope (all, a branch manager, an agent) and random filters (period, branch,
agent), the counts the charts sum are compared with the same counts taken from the leads
themselves. The same must hold after the summary is compacted and after it is rebuilt.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from app.dashboards.summary import (
    LeadSummary,
    compact,
    rebuild,
    status_counts_by_source_and_agent,
)
from app.extensions import db
from app.leads.models import LEAD_SOURCES, LEAD_STATUSES, Lead
from app.security.scoping import Actor, acting_as
from tests.support import login, make_branch, make_staff

FIRST_DAY = date(2026, 1, 20)
"""The random leads are created over about four months from here (parts of months and whole)."""


@pytest.fixture(params=["app", "pg_app"])
def on_each_database(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def staff(on_each_database):
    home, other = make_branch(), make_branch()
    people = {
        "manager": make_staff("Manager", home),
        "agent": make_staff("Agent", home),
        "colleague": make_staff("Agent", home),
        "stranger": make_staff("Agent", other),
    }
    db.session.commit()
    return people


def raw_counts(date_from, date_to, branch, agent) -> Counter:
    """(status, source, agent) -> leads, straight from the leads (the reader's scope applies)."""
    where = []
    if date_from is not None:
        where.append(Lead.created_at >= datetime.combine(date_from, datetime.min.time(), UTC))
    if date_to is not None:
        end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), UTC)
        where.append(Lead.created_at < end)
    if branch is not None:
        where.append(Lead.branch_id == branch)
    if agent is not None:
        where.append(Lead.assigned_agent_id == agent)
    rows = db.session.execute(
        select(Lead.status, Lead.source, Lead.assigned_agent_id, func.count())
        .where(*where)
        .group_by(Lead.status, Lead.source, Lead.assigned_agent_id)
    ).all()
    return Counter({(s, src, a): n for s, src, a, n in rows})


def summary_counts(date_from, date_to, branch, agent) -> Counter:
    rows = status_counts_by_source_and_agent(date_from, date_to, branch, agent)
    return Counter({(s, src, a): n for s, src, a, n in rows})


def _lead(person, day_offset: int, hour: int, source: str, status: str, n: int) -> dict:
    return {
        "first_name": "Sum",
        "last_name": f"Lead{n}",
        "email": f"sum.lead{n}@test.example",
        "source": source,
        "status": status,
        "lost_reason": "No budget" if status == "lost" else None,
        "score": 10,
        "assigned_agent_id": person.user_id if person is not None else None,
        "branch_id": person.branch_id,
        "created_at": datetime.combine(
            FIRST_DAY + timedelta(days=day_offset), datetime.min.time(), UTC
        )
        + timedelta(hours=hour),
    }


new_lead = st.tuples(
    st.sampled_from(["agent", "colleague", "stranger", "manager"]),
    st.integers(0, 130),
    st.integers(0, 23),
    st.sampled_from(LEAD_SOURCES),
    st.sampled_from(LEAD_STATUSES),
)
change = st.tuples(
    st.sampled_from(["status", "reassign", "redate", "delete"]),
    st.integers(0, 10**6),
    st.sampled_from(LEAD_STATUSES),
    st.sampled_from(["agent", "colleague", "stranger", None]),
    st.integers(0, 130),
)
day = st.one_of(st.none(), st.integers(-5, 140).map(lambda n: FIRST_DAY + timedelta(days=n)))
filters = st.tuples(
    day, day, st.sampled_from([None, "home", "other"]), st.sampled_from([None, "agent", "stranger"])
)


def _apply(staff, one_by_one, in_bulk, changes) -> None:
    n = 0
    for who, offset, hour, source, status in one_by_one:
        n += 1
        db.session.add(Lead(**_lead(staff[who], offset, hour, source, status, n)))
    db.session.flush()
    rows = []
    for who, offset, hour, source, status in in_bulk:
        n += 1
        rows.append(_lead(staff[who], offset, hour, source, status, n))
    if rows:
        db.session.execute(insert(Lead), rows)
    db.session.commit()
    leads = list(db.session.scalars(select(Lead).order_by(Lead.id)))
    for kind, pick, status, who, offset in changes:
        if not leads:
            break
        lead = leads[pick % len(leads)]
        if kind == "status":
            lead.status = status
            lead.lost_reason = "No budget" if status == "lost" else None
        elif kind == "reassign" and who is not None:
            lead.assigned_agent_id = staff[who].user_id
            lead.branch_id = staff[who].branch_id
        elif kind == "reassign":
            lead.assigned_agent_id = None
        elif kind == "redate":
            lead.created_at = datetime.combine(
                FIRST_DAY + timedelta(days=offset), datetime.min.time(), UTC
            )
        else:
            db.session.delete(lead)
            leads.remove(lead)
        db.session.commit()


def _check_every_scope(staff, checks) -> None:
    home = staff["manager"].branch_id
    branches = {None: None, "home": home, "other": staff["stranger"].branch_id}
    readers = {
        "admin": None,
        "manager": Actor(staff["manager"].user_id, frozenset({"Manager"}), home),
        "agent": Actor(staff["agent"].user_id, frozenset({"Agent"}), home),
    }
    for date_from, date_to, branch, agent in checks:
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from
        args = (
            date_from,
            date_to,
            branches[branch],
            staff[agent].user_id if agent else None,
        )
        for name, actor in readers.items():
            if actor is None:
                expected, found = raw_counts(*args), summary_counts(*args)
            else:
                with acting_as(actor):
                    expected, found = raw_counts(*args), summary_counts(*args)
            assert found == expected, (name, args)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    one_by_one=st.lists(new_lead, max_size=25),
    in_bulk=st.lists(new_lead, max_size=25),
    changes=st.lists(change, max_size=12),
    checks=st.lists(filters, min_size=1, max_size=4),
)
def test_every_chart_count_from_the_summary_is_the_leads_count(
    on_each_database, staff, one_by_one, in_bulk, changes, checks
):
    db.session.execute(Lead.__table__.delete())
    db.session.execute(LeadSummary.__table__.delete())
    db.session.commit()
    _apply(staff, one_by_one, in_bulk, changes)
    checks = [*checks, (None, None, None, None)]
    _check_every_scope(staff, checks)
    compact(db.session)
    db.session.commit()
    pending = db.session.scalar(
        select(func.count()).select_from(LeadSummary).where(LeadSummary.compacted.is_(False))
    )
    assert pending == 0
    _check_every_scope(staff, checks)
    rebuild(db.session)
    db.session.commit()
    _check_every_scope(staff, checks)


def test_compaction_folds_a_keys_changes_into_one_row(on_each_database, staff):
    lead = Lead(**_lead(staff["agent"], 3, 9, "web_form", "new", 1))
    db.session.add(lead)
    db.session.commit()
    for status in ("contacted", "qualified", "contacted"):
        lead.status = status
        db.session.commit()
    day_rows = select(func.count()).select_from(LeadSummary).where(LeadSummary.grain == "d")
    assert db.session.scalar(day_rows) == 4  # one row per change, appended
    assert compact(db.session) == 8  # both grains
    db.session.commit()
    assert db.session.scalar(day_rows) == 1
    assert summary_counts(None, None, None, None) == Counter(
        {("contacted", "web_form", staff["agent"].user_id): 1}
    )


def test_a_bulk_update_or_delete_of_leads_is_counted(on_each_database, staff):
    from sqlalchemy import delete, update

    for n, status in enumerate(("new", "new", "contacted")):
        db.session.add(Lead(**_lead(staff["agent"], 3, 9, "web_form", status, n)))
    db.session.commit()
    db.session.execute(
        update(Lead).where(Lead.status == "new").values(status="qualified"),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    everything = (None, None, None, None)
    assert summary_counts(*everything) == raw_counts(*everything)
    assert summary_counts(*everything)[("qualified", "web_form", staff["agent"].user_id)] == 2
    db.session.execute(
        delete(Lead).where(Lead.status == "contacted"),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    assert summary_counts(*everything) == raw_counts(*everything)
    assert ("contacted", "web_form", staff["agent"].user_id) not in summary_counts(*everything)


def test_the_sales_dashboard_shows_a_lead_as_soon_as_it_is_saved(on_each_database, staff):
    """No job has to run first: the lead is counted in the transaction that saves it, and a
    bar still opens the list of exactly the leads it counts."""
    from tests.test_dashboards import open_dashboard, record_count

    client = on_each_database.test_client()
    assert login(client, staff["manager"].user.username).status_code == 302
    before = open_dashboard(client, "sales")["lead-funnel"]["Qualified"][0]
    db.session.add(Lead(**{**_lead(staff["agent"], 0, 0, "referral", "qualified", 99)}))
    db.session.add(Lead(**{**_lead(staff["stranger"], 0, 0, "referral", "qualified", 98)}))
    db.session.commit()
    funnel = open_dashboard(client, "sales")["lead-funnel"]
    count, _, url = funnel["Qualified"]
    assert (before, count) == (0, 1)  # the other branch's lead is not the manager's
    assert record_count(client, url) == 1
