"""The navbar's menu, rendered once per set of grants instead of on every page.

FAB's ``navbar_menu.html`` asks the security manager about every menu item (about 70), builds
each item's URL and translates its label on every page. What it shows depends only on the
menu (fixed once the views are registered), which items the user may see, the language and
the application's URL prefix. So FAB's own template is rendered once for each combination of
the signed-in user's grants (app.security.manager), locale and prefix, and the HTML is reused;
``templates/appbuilder/navbar_menu.html`` calls it. A user whose permissions FAB decides by
its own path (see ``_request_grants``) gets the template rendered afresh each time.
"""

from __future__ import annotations

from pathlib import Path
from threading import Lock
from typing import Any

import flask_appbuilder
from flask import Flask, current_app, request
from flask_babel import get_locale
from jinja2 import FileSystemLoader
from markupsafe import Markup

FAB_MENU_TEMPLATE = "appbuilder/navbar_menu.html"
MAX_MENUS = 256
"""Distinct menus kept (one per combination of roles in use); beyond, the cache starts over."""


def install_navbar_menu(app: Flask) -> None:
    """Give templates ``crm_navbar_menu(menu)``: FAB's menu template, rendered from its own
    folder (the app's ``navbar_menu.html`` overrides the name), cached per grants."""
    fab_templates = Path(flask_appbuilder.__file__).parent / "templates"
    fab_env = app.jinja_env.overlay(loader=FileSystemLoader(str(fab_templates)))
    cache: dict[tuple[Any, ...], Markup] = {}
    lock = Lock()

    def crm_navbar_menu(menu: Any) -> Markup:
        template = fab_env.get_template(FAB_MENU_TEMPLATE)
        grants = current_app.appbuilder.sm._request_grants()
        if grants is None:
            return Markup(template.render(menu=menu))
        key = (id(menu), grants, str(get_locale()), request.script_root)
        html = cache.get(key)
        if html is None:
            html = Markup(template.render(menu=menu))
            with lock:
                if len(cache) >= MAX_MENUS:
                    cache.clear()
                cache[key] = html
        return html

    app.jinja_env.globals["crm_navbar_menu"] = crm_navbar_menu
