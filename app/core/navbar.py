"""The navbar's menus, rendered once per set of grants instead of on every page.

FAB's ``navbar_menu.html`` asks the security manager about every menu item (about 70), builds
each item's URL and translates its label on every page, and draws every separator, also one
between entries the user may not open. Here the entries the user may open are picked once
(``visible_entries``: a separator only between two shown entries, a menu only when something in
it is shown) and drawn by ``crm/_navbar_menu.html``, once for each combination of the signed-in
user's grants (app.security.manager), locale and prefix; the HTML is reused.
``templates/appbuilder/navbar_menu.html`` calls it. A user whose permissions FAB decides by its
own path (see ``_request_grants``) gets the menu drawn afresh each time.
"""

from __future__ import annotations

from threading import Lock
from typing import Any

from flask import Flask, current_app, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

MENU_TEMPLATE = "crm/_navbar_menu.html"
MAX_MENUS = 256
"""Distinct menus kept (one per combination of roles in use); beyond, the cache starts over."""
SEPARATOR = "-"


def visible_entries(menu: Any) -> list[tuple[Any, list[Any] | None]]:
    """The top-level entries the signed-in user may open, each with the entries of its
    dropdown (``None`` in that list is a separator; ``None`` instead of a list: a plain link)."""
    sm = current_app.appbuilder.sm
    entries: list[tuple[Any, list[Any] | None]] = []
    for item in menu.get_list():
        if not sm.has_access("menu_access", item.name):
            continue
        if not item.childs:
            entries.append((item, None))
            continue
        children: list[Any] = []
        for child in item.childs:
            if child is None:
                continue
            if child.name == SEPARATOR:
                if children and children[-1] is not None:
                    children.append(None)
            elif sm.has_access("menu_access", child.name):
                children.append(child)
        while children and children[-1] is None:
            children.pop()
        if children:
            entries.append((item, children))
    return entries


def install_navbar_menu(app: Flask) -> None:
    """Give templates ``crm_navbar_menu(menu)``: the menus the user may open, cached per
    grants."""
    cache: dict[tuple[Any, ...], Markup] = {}
    lock = Lock()

    def draw(menu: Any) -> Markup:
        return Markup(render_template(MENU_TEMPLATE, entries=visible_entries(menu)))

    def crm_navbar_menu(menu: Any) -> Markup:
        grants = current_app.appbuilder.sm._request_grants()
        if grants is None:
            return draw(menu)
        key = (id(menu), grants, str(get_locale()), request.script_root)
        html = cache.get(key)
        if html is None:
            html = draw(menu)
            with lock:
                if len(cache) >= MAX_MENUS:
                    cache.clear()
                cache[key] = html
        return html

    app.jinja_env.globals["crm_navbar_menu"] = crm_navbar_menu
