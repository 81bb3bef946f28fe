"""Every role x every registered endpoint: allowed or refused exactly as app.security.roles says.

A view or API whose permissions nobody decided in the roles module fails here.
"""

from __future__ import annotations

import pytest

from app.extensions import db
from app.security.roles import (
    ADMIN_ONLY_MENUS,
    ADMIN_ONLY_VIEWS,
    EXTRA_ACTIONS,
    MAX_TOP_MENUS,
    MENU_CATEGORIES,
    RESOURCES,
    ROLES,
    SELF_SERVICE_PERMISSIONS,
    allowed,
    menus_for,
)
from app.security.sync import undecided_menus
from tests.support import login, make_branch, make_staff

ACTIONS = {"can_read", "can_write", "can_delete"}
PUBLIC_ENDPOINTS = {
    "AuthDBView.login",
    "AuthDBView.logout",
    "HomeView.index",  # the home page: sign-in first, then the Home permission (own check)
    "LocaleView.index",
    "SecurityApi.login",
    "SecurityApi.refresh",
    "static",
    "appbuilder.static",
    "calendar_feed.feed",  # the private ICS feed: the secret link is the credential
    "public_leads.enquire",  # the public enquiry form (CSRF, honeypot, rate limit)
    "health.liveness",  # probes: no sign-in, no data (tests/test_health.py)
    "health.readiness",
    "market_webhooks.price_event",  # signed by the market-data provider (HMAC), throttled
    "market_webhooks.fx_rate_event",
    "payment_webhooks.payment_event",  # provider webhooks: the signature is the credential
    "campaign_unsubscribe.unsubscribe",  # unsubscribe links: the signed token is the credential
}
URL_VALUES = {
    "pk": "0",
    "other": "0",
    "field": "pan",
    "record_type": "lead",
    "record_id": "0",
    "role_id": "0",
    "version": "v1",
    "filename": "nothing.txt",
    "name": "none",
    "locale": "en",
    "document_id": "0",
    "fee_id": "0",
    "line_id": "0",
    "code": "XXX",
    "fmt": "csv",
    "key": "none",
    "key_uuid": "0",
}


def _views_by_blueprint(app):
    return {v.blueprint.name: v for v in app.appbuilder.baseviews if getattr(v, "blueprint", None)}


def _permission_of(app, view, endpoint):
    func_name = endpoint.rsplit(".", 1)[1]
    func = app.view_functions[endpoint]
    base = getattr(func, "_permission_name", None)
    if base is None:
        return None
    mapped = (
        (view.method_permission_name or {}).get(func_name) if view.method_permission_name else None
    )
    return f"can_{mapped or base}"


def expected_allowed(role: str | None, permission: str, view) -> bool:
    view_name = view.class_permission_name
    if role is None or permission not in view.base_permissions:
        return False  # e.g. FAB's read-only permission screens have routes nobody may use
    if view_name in RESOURCES:
        return allowed(role, view_name, permission.removeprefix("can_"))
    if (permission, view_name) in SELF_SERVICE_PERMISSIONS:
        return True
    if view_name in ADMIN_ONLY_VIEWS:
        return role == "Admin"
    raise AssertionError(f"nobody decided who may use {permission} on {view_name}")


def _endpoints(app):
    views = _views_by_blueprint(app)
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        view = views[rule.endpoint.rsplit(".", 1)[0]]
        permission = _permission_of(app, view, rule.endpoint)
        if permission is None:
            continue  # row actions: none are registered yet; each will carry its own permission
        method = next(m for m in ("GET", "POST", "PUT", "DELETE") if m in rule.methods)
        url = rule.build({k: v for k, v in URL_VALUES.items() if k in rule.arguments})[1]
        yield view, permission, method, url


def _refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def test_every_registered_view_and_menu_has_a_decision(app):
    decided = set(RESOURCES) | set(ADMIN_ONLY_VIEWS) | {v for _, v in SELF_SERVICE_PERMISSIONS}
    undecided = {
        v.class_permission_name
        for v in app.appbuilder.baseviews
        if v.class_permission_name not in decided and v.base_permissions
    }
    assert not undecided, f"views with no decision in app/security/roles.py: {undecided}"
    assert not undecided_menus(app.appbuilder)
    for view in app.appbuilder.baseviews:
        if view.class_permission_name in RESOURCES:
            extra = {f"can_{a}" for a in EXTRA_ACTIONS.get(view.class_permission_name, ())}
            assert set(view.base_permissions) <= ACTIONS | extra, (view, view.base_permissions)
    assert set(ADMIN_ONLY_MENUS).isdisjoint(MENU_CATEGORIES)


def test_the_navbar_is_one_menu_per_desk_as_roles_py_declares(app):
    """The registered menu is MENU_CATEGORIES, in its order, each entry in the menu roles.py
    puts it in (FAB's security screens at the end of Organisation): no role sees more than
    MAX_TOP_MENUS menus, and menus_for() decides what each sees from the same table."""
    menu = app.appbuilder.menu.get_list()
    assert [item.name for item in menu] == list(MENU_CATEGORIES)
    assert len(MENU_CATEGORIES) <= MAX_TOP_MENUS
    for item in menu:
        entries = [child.name for child in item.childs if child.name != "-"]
        ours = [name for name in entries if name not in ADMIN_ONLY_MENUS]
        assert ours == list(MENU_CATEGORIES[item.name]), item.name
        if item.name != "Organisation":
            assert ours == entries, f"FAB's screens only under Organisation, not {item.name}"
    for role in ROLES:
        assert len(set(MENU_CATEGORIES) & menus_for(role)) <= MAX_TOP_MENUS


@pytest.fixture
def staff_by_role(app):
    branch = make_branch()
    users = {role: make_staff(role, branch).user.username for role in ROLES}
    db.session.commit()
    return users


@pytest.mark.parametrize("role", [*ROLES, None])
def test_role_endpoint_matrix(app, staff_by_role, role):
    client = app.test_client()
    if role is not None:
        assert login(client, staff_by_role[role]).status_code == 302
    mismatches = []
    checked = 0
    for view, permission, method, url in _endpoints(app):
        response = client.open(
            url, method=method, json={} if url.startswith("/api/") and method != "GET" else None
        )
        refused = _refused(response)
        should_allow = expected_allowed(role, permission, view)
        checked += 1
        if refused == should_allow:
            mismatches.append(
                f"{method} {url} ({permission} on {view.class_permission_name}): got {response.status_code}, "
                f"expected {'allowed' if should_allow else 'refused'}"
            )
    assert checked > 100
    assert not mismatches, "\n".join(mismatches)


def test_the_readmes_role_table_is_made_from_roles_py():
    from pathlib import Path

    from app.security.roles import ROLE_TABLE_END, ROLE_TABLE_START, role_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    written = readme.split(ROLE_TABLE_START)[1].split(ROLE_TABLE_END)[0].strip()
    assert written == role_table(), "run `flask --app run crm role-table` and paste it"
    for role in ROLES:
        assert f"| {role} |" in written


def test_the_auditor_reads_every_record_but_not_the_admins_jobs_page(app, client):
    make_staff("Auditor", make_branch(), "auditor_jobs")
    db.session.commit()
    login(client, "auditor_jobs")
    assert client.get("/jobs/").status_code in (302, 403)
    assert client.get("/auditlogview/list/").status_code == 200
    assert client.get("/messagelogview/list/").status_code == 200
