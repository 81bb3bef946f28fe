"""Sessions end on the server: over a real HTTP server, a session cookie kept from before a
sign-out, a deactivation or a password change no longer opens a screen, a bearer token issued
before no longer reads the API, and idle sessions end; each end is audited."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from app.audit.models import AuditLog
from app.extensions import db
from app.payments.test_gateway import serve_in_thread
from tests.support import PASSWORD, make_branch, make_staff


@pytest.fixture
def site(app):
    server, thread, url = serve_in_thread(app)
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def agent(app):
    staff = make_staff("Agent", make_branch())
    db.session.commit()
    name = staff.user.username
    db.session.rollback()
    return name


def sign_in(site: str, username: str) -> requests.Session:
    browser = requests.Session()
    answer = browser.post(
        f"{site}/login/", data={"username": username, "password": PASSWORD}, allow_redirects=False
    )
    assert answer.status_code == 302 and "session" in browser.cookies, answer.text[:300]
    return browser


def opens_leads(site: str, cookie: str) -> bool:
    answer = requests.get(
        f"{site}/leadview/list/", cookies={"session": cookie}, allow_redirects=False
    )
    return answer.status_code == 200


def token(site: str, username: str) -> str:
    answer = requests.post(
        f"{site}/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def reads_api(site: str, bearer: str) -> int:
    return requests.get(
        f"{site}/api/v1/lead/", headers={"Authorization": f"Bearer {bearer}"}
    ).status_code


def ended() -> list[AuditLog]:
    db.session.rollback()
    return db.session.scalars(
        select(AuditLog).where(AuditLog.action == "session ended").order_by(AuditLog.id)
    ).all()


def test_a_cookie_kept_from_before_sign_out_opens_nothing(app, site, agent):
    first = sign_in(site, agent)
    kept = first.cookies["session"]
    other_desk = sign_in(site, agent)  # the same person signed in on a second machine
    bearer = token(site, agent)
    assert opens_leads(site, kept) and reads_api(site, bearer) == 200

    first.get(f"{site}/logout/")

    assert not opens_leads(site, kept)
    again = requests.get(f"{site}/leadview/list/", cookies={"session": kept}, allow_redirects=False)
    assert again.status_code == 302 and "/login/" in again.headers["Location"]
    assert other_desk.get(f"{site}/leadview/list/", allow_redirects=False).status_code == 302
    assert reads_api(site, bearer) == 401
    assert any("signed out" in (row.detail or "") for row in ended())
    # signing in again works, with a fresh cookie and token
    assert opens_leads(site, sign_in(site, agent).cookies["session"])
    assert reads_api(site, token(site, agent)) == 200


def test_deactivation_and_a_password_change_end_every_session(app, site, agent):
    from flask_appbuilder.security.sqla.models import User

    kept = sign_in(site, agent).cookies["session"]
    bearer = token(site, agent)
    user = db.session.scalars(select(User).where(User.username == agent)).one()
    app.appbuilder.sm.reset_password(user.id, "A-new-password-2026")
    assert not opens_leads(site, kept) and reads_api(site, bearer) == 401

    user = db.session.scalars(select(User).where(User.username == agent)).one()
    app.appbuilder.sm.reset_password(user.id, PASSWORD)
    kept = sign_in(site, agent).cookies["session"]
    assert opens_leads(site, kept)
    user = db.session.scalars(select(User).where(User.username == agent)).one()
    user.active = False
    db.session.commit()
    user.active = True  # even re-activated at once, the old session stays ended
    db.session.commit()
    assert not opens_leads(site, kept)


def test_an_idle_session_ends(app, site, agent, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_SESSION_IDLE_SECONDS", 1)
    browser = sign_in(site, agent)
    assert browser.get(f"{site}/leadview/list/", allow_redirects=False).status_code == 200
    time.sleep(2.2)
    answer = browser.get(f"{site}/leadview/list/", allow_redirects=False)
    assert answer.status_code == 302 and "/login/" in answer.headers["Location"]
    assert "idle too long" in ended()[-1].detail


def test_a_session_signed_in_too_long_ago_ends(app, site, agent, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_SESSION_MAX_SECONDS", 1)
    browser = sign_in(site, agent)
    time.sleep(2.2)
    assert browser.get(f"{site}/leadview/list/", allow_redirects=False).status_code == 302
    assert "signed in too long ago" in ended()[-1].detail
