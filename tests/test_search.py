"""The navbar's search: leads and clients by name, e-mail, phone or number and invoices by
number, only within the reader's rows, with a message for a query too short to search."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from tests.billing_support import make_client
from tests.support import login, make_branch, make_lead, make_staff


@pytest.fixture
def world(pg_app):
    home, other = make_branch(), make_branch()
    agent, colleague = make_staff("Agent", home), make_staff("Agent", home)
    manager = make_staff("Manager", home)
    stranger = make_staff("Agent", other)
    mine = make_lead(agent, first_name="Meenakshi", last_name="Iyer", email="m.iyer@corp.example")
    theirs = make_lead(colleague, first_name="Meenakshi", last_name="Rao", phone="+61 412 345 678")
    far = make_lead(stranger, first_name="Meenakshi", last_name="Far")
    client = make_client(agent, name="Meenakshi Traders")
    db.session.commit()
    return {
        "agent": agent.user.username,
        "manager": manager.user.username,
        "mine": mine.id,
        "theirs": theirs.id,
        "far": far.id,
        "client": client.id,
    }


def found(client, query: str) -> tuple[int, dict[str, list[str]], str]:
    answer = client.get("/search/", query_string={"q": query})
    page = answer.get_data(as_text=True)
    groups = {}
    for kind, body in re.findall(
        r'<ul class="search-hits" data-kind="(\w+)">(.*?)</ul>', page, re.S
    ):
        groups[kind] = re.findall(r'<li><a href="([^"]+)"', body)
    return answer.status_code, groups, page


def signed_in(pg_app, username):
    client = pg_app.test_client()
    assert login(client, username).status_code == 302
    return client


def test_an_agent_finds_only_their_own_leads_by_name(pg_app, world):
    status, groups, _ = found(signed_in(pg_app, world["agent"]), "meenakshi")
    assert status == 200
    assert groups["lead"] == [f"/leadview/show/{world['mine']}"]
    assert groups["client"] == [f"/clientview/show/{world['client']}"]


def test_a_manager_finds_the_branchs_leads_and_not_another_branchs(pg_app, world):
    status, groups, _ = found(signed_in(pg_app, world["manager"]), "Meenakshi")
    assert status == 200
    assert groups["lead"] == [
        f"/leadview/show/{world['theirs']}",
        f"/leadview/show/{world['mine']}",
    ]
    assert f"/leadview/show/{world['far']}" not in str(groups)


def test_two_words_match_first_and_last_name(pg_app, world):
    _, groups, _ = found(signed_in(pg_app, world["manager"]), "meenakshi rao")
    assert groups["lead"] == [f"/leadview/show/{world['theirs']}"]


def test_e_mail_phone_and_number_each_find_their_row(pg_app, world):
    manager = signed_in(pg_app, world["manager"])
    assert found(manager, "M.IYER@corp")[1]["lead"] == [f"/leadview/show/{world['mine']}"]
    assert found(manager, "412 345 678")[1]["lead"] == [f"/leadview/show/{world['theirs']}"]
    assert found(manager, f"#{world['theirs']}")[1]["lead"] == [f"/leadview/show/{world['theirs']}"]
    # a number outside the reader's rows finds nothing
    agent = signed_in(pg_app, world["agent"])
    assert found(agent, str(world["theirs"]))[1]["lead"] == []


def test_a_query_too_short_gets_a_message_not_an_error(pg_app, world):
    client = signed_in(pg_app, world["agent"])
    status, groups, page = found(client, "m")
    assert status == 400 and groups == {}
    assert "Type at least 2 characters" in page
    status, _, page = found(client, "")
    assert status == 200 and "Type at least 2 characters" in page
    status, _, page = found(client, "x" * 101)
    assert status == 400 and "at most 100 characters" in page


def test_more_than_ten_matches_link_to_the_filtered_list(pg_app, world):
    agent = make_staff("Agent", make_branch())
    for _ in range(12):
        make_lead(agent, first_name="Zed", last_name="Quorra")
    db.session.commit()
    client = signed_in(pg_app, agent.user.username)
    _, groups, page = found(client, "quorra")
    assert len(groups["lead"]) == 10
    more = re.search(r'<a href="([^"]+)" class="search-more">', page).group(1)
    listed = client.get(more.replace("&amp;", "&")).get_data(as_text=True)
    assert len(set(re.findall(r"/leadview/show/(\d+)", listed))) == 12


def test_the_search_box_is_in_every_signed_in_navbar_and_search_needs_sign_in(pg_app, world):
    client = signed_in(pg_app, world["agent"])
    assert 'id="global-search"' in client.get("/leadview/list/").get_data(as_text=True)
    assert pg_app.test_client().get("/search/?q=meenakshi").status_code == 302
