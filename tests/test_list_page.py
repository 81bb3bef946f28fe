"""A list page is rendered with less work per request and the same HTML."""

from __future__ import annotations

import re

from flask import g
from flask_appbuilder.fields import QuerySelectField
from flask_login import current_user, login_user
from markupsafe import Markup

from app.core.crud import ServiceModelView
from app.core.list_page import ROW_KEY, render_search_field, row_buttons
from app.extensions import db
from tests.support import login, make_branch, make_lead, make_staff


def test_search_fields_render_exactly_as_their_widgets_do(app):
    branch = make_branch()
    manager = make_staff("Manager", branch)
    make_staff("Agent", branch, username='agent<"&>')  # text that must be escaped
    db.session.commit()
    views = [v for v in app.appbuilder.baseviews if isinstance(v, ServiceModelView)]
    with app.test_request_context("/"):
        g.user = current_user
        login_user(manager.user)
        relations = 0
        for view in views:
            form = view.search_form.refresh()
            for column in view.search_columns:
                field = form[column]
                assert render_search_field(field) == field(), (view, column)
                if type(field) is QuerySelectField:
                    relations += 1
                    options = field._get_object_list()
                    if options:  # with an option selected, as when the form is bound
                        field.data = options[-1][1]
                        assert 'selected value="' in field()
                        assert render_search_field(field) == field(), (view, column)
        assert relations > 10


def _each_row_with_the_macro(btn_crud, can_show, can_edit, can_delete, pks, name, filters):
    return lambda pk: btn_crud(can_show, can_edit, can_delete, pk, name, filters)


def test_row_buttons_are_those_the_macro_renders_for_each_row(app, monkeypatch):
    branch = make_branch()
    manager = make_staff("Manager", branch)
    leads = [make_lead(manager) for _ in range(3)]
    db.session.commit()
    client = app.test_client()
    login(client, manager.user.username)
    # a related list too: its buttons carry the parent's filter
    urls = ["/leadview/list/", f"/leadview/show/{leads[0].id}"]
    shared = [client.get(url).get_data(as_text=True) for url in urls]
    monkeypatch.setitem(app.jinja_env.globals, "crm_row_buttons", _each_row_with_the_macro)
    each = [client.get(url).get_data(as_text=True) for url in urls]
    # per request: the script nonce, the time a date search field defaults to
    varying = re.compile(r'nonce="[^"]*"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00')
    for one, other in zip(shared, each, strict=True):
        assert varying.sub("", one) == varying.sub("", other)
    for lead in leads:
        assert f"/leadview/delete/{lead.id}" in shared[0]
        assert f'id="btn-delete-/leadview/delete/{lead.id}"' in shared[0]


def test_row_buttons_fall_back_to_the_macro_when_keys_are_not_whole_numbers():
    calls = []

    def btn_crud(can_show, can_edit, can_delete, pk, name, filters):
        calls.append(pk)
        return Markup(f"<a href='/x/show/{pk}'>")

    buttons = row_buttons(btn_crud, True, True, True, ["a", "b"], "XView", None)
    assert [str(buttons(pk)) for pk in ("a", "b")] == [
        "<a href='/x/show/a'>",
        "<a href='/x/show/b'>",
    ]
    assert calls == ["a", "b"]
    calls.clear()
    buttons = row_buttons(btn_crud, True, True, True, [7, 12], "XView", None)
    assert [str(buttons(pk)) for pk in (7, 12)] == ["<a href='/x/show/7'>", "<a href='/x/show/12'>"]
    assert calls == [ROW_KEY, 7]  # once for the page, once to check the first row


def test_each_request_searches_with_its_own_filters(app):
    """FAB fills a screen's filters from the request: with threads, two requests at once to
    the same list must not share them."""
    from flask_appbuilder.urltools import get_filter_args

    view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == "LeadView")
    with app.test_request_context("/leadview/list/?_flt_0_first_name=Ana"):
        get_filter_args(view._filters)
        assert [value for _, value in view._filters.get_filters_values()] == [["Ana"]]
        with app.test_request_context("/leadview/list/"):  # another request meanwhile
            assert view._filters.get_filters_values() == []
            assert "first_name" in view._filters.get_search_filters()
        assert [value for _, value in view._filters.get_filters_values()] == [["Ana"]]
    assert view._filters.get_filters_values() == []  # the screen's own stays empty
