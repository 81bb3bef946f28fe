"""Pages past the first: the keys of the page are picked first, then the rows read (a deferred
join). The page must hold exactly the rows a plain offset over the same order would, within
the reader's own rows, on the screens and through the API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.leads.models import Lead
from tests.support import api_token, login, make_branch, make_lead, make_staff


@pytest.fixture(params=["app", "pg_app"])
def on_each_database(request):
    """The app on SQLite, then on PostgreSQL (whose planner uses the page indexes)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def two_branches(on_each_database):
    home, other = make_branch(), make_branch()
    manager = make_staff("Manager", home)
    agent = make_staff("Agent", home)
    colleague = make_staff("Agent", home)
    stranger = make_staff("Agent", other)
    for n in range(23):
        make_lead(agent if n % 3 else colleague, score=(n * 7) % 11, first_name=f"Ana{n % 4}")
        make_lead(stranger, score=n % 5)
    db.session.commit()
    return {"manager": manager, "agent": agent, "home": home}


def expected_ids(where, order, offset: int, limit: int) -> list[int]:
    query = select(Lead.id).where(where).order_by(*order).offset(offset).limit(limit)
    return list(db.session.scalars(query.execution_options(crm_unscoped=True)))


def shown_ids(page: bytes) -> list[int]:
    return list(dict.fromkeys(int(pk) for pk in re.findall(rb"/leadview/show/(\d+)", page)))


@pytest.mark.parametrize(
    ("order_args", "order"),
    [
        ("", (Lead.id.desc(),)),
        ("&_oc_LeadView=score&_od_LeadView=desc", (Lead.score.desc(), Lead.id.desc())),
        ("&_oc_LeadView=first_name&_od_LeadView=asc", (Lead.first_name, Lead.id)),
    ],
)
def test_a_deep_page_of_the_branch_list_holds_the_rows_an_offset_would(
    on_each_database, two_branches, order_args, order
):
    client = on_each_database.test_client()
    assert login(client, two_branches["manager"].user.username).status_code == 302
    branch_rows = Lead.branch_id == two_branches["home"].id
    for page in (1, 3, 4):
        response = client.get(f"/leadview/list/?psize_LeadView=5&page_LeadView={page}{order_args}")
        assert response.status_code == 200
        assert shown_ids(response.data) == expected_ids(branch_rows, order, page * 5, 5)
    # past the end: an empty page, not another branch's leads
    response = client.get(f"/leadview/list/?psize_LeadView=5&page_LeadView=9{order_args}")
    assert shown_ids(response.data) == []


def test_a_deep_api_page_holds_an_agents_own_rows_in_order_filtered(on_each_database, two_branches):
    app = on_each_database
    agent = two_branches["agent"]
    token = api_token(app.test_client(), agent.user.username)
    headers = {"Authorization": f"Bearer {token}"}
    own = (Lead.assigned_agent_id == agent.user_id) & (Lead.first_name == "Ana1")
    for query, order in [
        ("(page:1,page_size:2,filters:!((col:first_name,opr:eq,value:Ana1)))", (Lead.id,)),
        (
            "(page:1,page_size:2,order_column:score,order_direction:desc,"
            "filters:!((col:first_name,opr:eq,value:Ana1)))",
            (Lead.score.desc(), Lead.id.desc()),
        ),
    ]:
        response = app.test_client().get(
            "/api/v1/lead/", headers=headers, query_string={"q": query}
        )
        assert response.status_code == 200, response.json
        assert response.json["ids"] == expected_ids(own, order, 2, 2)
        assert response.json["count"] == len(expected_ids(own, order, 0, 100))


def record_count(page: bytes) -> str:
    found = re.search(rb"Record Count:</strong>\s*([0-9,+]+)", page)
    assert found, "the list shows its record count"
    return found.group(1).decode()


@pytest.mark.parametrize(
    ("order_args", "order"),
    [
        ("", (Lead.id.desc(),)),
        ("&_oc_LeadView=score&_od_LeadView=desc", (Lead.score.desc(), Lead.id.desc())),
        ("&_oc_LeadView=first_name&_od_LeadView=asc", (Lead.first_name, Lead.id)),
    ],
)
def test_a_page_past_the_counted_ones_holds_its_rows_and_tells_the_count(
    on_each_database, two_branches, order_args, order, monkeypatch
):
    """Past LIST_COUNT_CAP rows (10 here) the page's keys and those of the next pages are read
    in one statement; the rows and the count must be what a plain offset and count give."""
    monkeypatch.setattr("app.core.crud.LIST_COUNT_CAP", 10)
    client = on_each_database.test_client()
    assert login(client, two_branches["manager"].user.username).status_code == 302
    branch_rows = Lead.branch_id == two_branches["home"].id
    for page in (2, 3, 4):
        response = client.get(f"/leadview/list/?psize_LeadView=5&page_LeadView={page}{order_args}")
        assert response.status_code == 200
        assert shown_ids(response.data) == expected_ids(branch_rows, order, page * 5, 5)
        # 23 leads in the branch: the keys read reach the end, so the count is exact
        assert record_count(response.data) == "23"
    # pages of 2: from row 10 the pager's four pages (8 rows) do not reach the end (23)
    response = client.get(f"/leadview/list/?psize_LeadView=2&page_LeadView=5{order_args}")
    assert shown_ids(response.data) == expected_ids(branch_rows, order, 10, 2)
    assert record_count(response.data) == "18+"
    # past the end: an empty page, not another branch's leads
    response = client.get(f"/leadview/list/?psize_LeadView=5&page_LeadView=9{order_args}")
    assert shown_ids(response.data) == []
