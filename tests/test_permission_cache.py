"""Permission checks are answered from the signed-in user's grants, read once per request: a
user without a permission is still refused (route and button), each user in a request gets
their own answers, and a change of grants applies from the next request on."""

from __future__ import annotations

from flask import g
from flask_login import current_user, login_user, logout_user

from app.extensions import db
from tests.support import login, make_branch, make_lead, make_staff


def _refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def test_an_agent_without_delete_gets_no_delete_button_and_cannot_delete(app):
    branch = make_branch()
    agent, admin = make_staff("Agent", branch), make_staff("Admin", branch)
    lead = make_lead(agent)
    db.session.commit()

    as_admin = app.test_client()
    login(as_admin, admin.user.username)
    page = as_admin.get("/leadview/list/").get_data(as_text=True)
    assert f"/leadview/delete/{lead.id}" in page and 'href="/users/list/' in page

    as_agent = app.test_client()
    login(as_agent, agent.user.username)
    page = as_agent.get("/leadview/list/").get_data(as_text=True)
    assert f"/leadview/show/{lead.id}" in page and f"/leadview/edit/{lead.id}" in page
    assert "/leadview/delete/" not in page
    # the Security menu (admin only) is not shown either
    assert 'href="/users/list/' not in page
    assert _refused(as_agent.post(f"/leadview/delete/{lead.id}"))
    assert db.session.get(type(lead), lead.id) is not None


def test_each_user_signed_in_within_one_request_gets_their_own_answers(app):
    branch = make_branch()
    agent, manager = make_staff("Agent", branch), make_staff("Manager", branch)
    db.session.commit()
    sm = app.appbuilder.sm
    with app.test_request_context("/leadview/list/"):
        g.user = current_user  # as FAB's before_request sets it
        login_user(manager.user)
        assert sm.has_access("can_delete", "Lead")
        logout_user()
        assert not sm.has_access("can_delete", "Lead")
        assert not sm.has_access("can_read", "Lead")
        login_user(agent.user)
        assert sm.has_access("can_read", "Lead")
        assert not sm.has_access("can_delete", "Lead")


def test_a_revoked_permission_is_refused_and_its_menu_item_gone_from_the_next_request_on(app):
    sm = app.appbuilder.sm
    branch = make_branch()
    reader = make_staff("Agent", branch)
    role = sm.add_role("Lead reader (test)")
    for permission, view in (
        ("can_read", "Lead"),
        ("menu_access", "Leads"),
        ("menu_access", "Sales"),
    ):
        sm.add_permission_role(role, sm.find_permission_view_menu(permission, view))
    reader.user.roles = [role]
    db.session.commit()
    try:
        client = app.test_client()
        login(client, reader.user.username)
        assert client.get("/leadview/list/").status_code == 200
        assert 'href="/leadview/list/"' in client.get("/").get_data(as_text=True)
        for permission, view in (("can_read", "Lead"), ("menu_access", "Leads")):
            sm.del_permission_role(role, sm.find_permission_view_menu(permission, view))
        db.session.commit()
        assert _refused(client.get("/leadview/list/"))
        # the menu, rendered once per set of grants, follows the change too
        assert 'href="/leadview/list/"' not in client.get("/").get_data(as_text=True)
    finally:
        reader.user.roles = []
        db.session.commit()
        db.session.delete(db.session.merge(role))
        db.session.commit()
