"""Login throttling, CSRF, safe redirects and production settings."""

from __future__ import annotations

import pytest

import config
from app import create_app
from app.extensions import db
from app.leads.models import Lead
from tests.support import PASSWORD, build_app, count, make_branch, make_staff, prepare_schema


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory):
    """An app with production-like protections: CSRF on, login limited to 3 tries a minute."""
    path = tmp_path_factory.mktemp("strict") / "strict.db"
    app = build_app(
        f"sqlite:///{path}",
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=True,
        AUTH_RATE_LIMIT="3 per minute",
        CRM_LOGIN_USERNAME_LIMIT="3 per minute",
    )
    prepare_schema(app)
    with app.app_context():
        branch = make_branch()
        for name in ("strictagent", "formguessed", "apiguessed", "sharedguessed", "spread"):
            make_staff("Agent", branch, username=name)
        db.session.commit()
    return app


def _csrf_token(client, path="/login/"):
    import re

    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_form_login_is_rate_limited(strict_app):
    client = strict_app.test_client()
    codes = []
    for _ in range(5):
        token = _csrf_token(client)
        response = client.post(
            "/login/",
            data={"username": "formguessed", "password": "wrong", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.9.1"},
        )
        codes.append(response.status_code)
    assert codes[:3] == [302, 302, 302]
    assert 429 in codes[3:]


def test_api_login_is_rate_limited(strict_app):
    client = strict_app.test_client()
    body = {"username": "apiguessed", "password": "wrong", "provider": "db"}
    codes = [
        client.post(
            "/api/v1/security/login", json=body, environ_base={"REMOTE_ADDR": "10.9.9.2"}
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


def _throttled() -> list:
    from sqlalchemy import select

    from app.audit.models import AuditLog

    return db.session.scalars(
        select(AuditLog).where(AuditLog.action == "login throttled").order_by(AuditLog.id)
    ).all()


def test_the_form_and_the_api_share_one_allowance_per_address(strict_app):
    """Over a real HTTP server (every attempt from 127.0.0.1)."""
    import re

    import requests

    from app.payments.test_gateway import serve_in_thread

    server, thread, site = serve_in_thread(strict_app)
    try:
        browser = requests.Session()

        def form_post(username: str):
            page = browser.get(f"{site}/login/").text
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
                r'value="([^"]+)"[^>]*name="csrf_token"', page
            )
            return browser.post(
                f"{site}/login/",
                data={"username": username, "password": "wrong", "csrf_token": token.group(1)},
                allow_redirects=False,
            )

        form = form_post("sharedguessed")
        body = {"username": "sharedguessed", "password": "wrong", "provider": "db"}
        api = [requests.post(f"{site}/api/v1/security/login", json=body) for _ in range(3)]
        again = form_post("strictagent")
    finally:
        server.shutdown()
        thread.join(5)
    assert form.status_code == 302
    assert [r.status_code for r in api] == [401, 401, 429]  # 3 in all, form and API together
    assert int(api[-1].headers["Retry-After"]) >= 1
    assert "try again in" in api[-1].json()["message"]
    assert again.status_code == 429  # the form is refused too, for any name, from there
    with strict_app.app_context():
        assert "for this address (127.0.0.1)" in _throttled()[-1].detail


def test_guesses_spread_over_addresses_are_stopped_per_username(strict_app):
    client = strict_app.test_client()
    body = {"username": "spread", "password": "wrong", "provider": "db"}
    codes = [
        client.post(
            "/api/v1/security/login", json=body, environ_base={"REMOTE_ADDR": f"10.8.0.{n}"}
        ).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    # while it lasts, even the right password from a fresh address waits: the guesser cannot
    # learn it is right
    right = client.post(
        "/api/v1/security/login",
        json={**body, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.8.1.1"},
    )
    assert right.status_code == 429 and "access_token" not in (right.json or {})
    # another user from those addresses is not affected by spread's failures
    other = client.post(
        "/api/v1/security/login",
        json={"username": "strictagent", "password": PASSWORD, "provider": "db"},
        environ_base={"REMOTE_ADDR": "10.8.0.9"},
    )
    assert other.status_code == 200
    with strict_app.app_context():
        assert "for this username (spread)" in _throttled()[-1].detail


def test_post_without_csrf_token_writes_nothing(strict_app):
    client = strict_app.test_client()
    token = _csrf_token(client)
    client.post(
        "/login/",
        data={"username": "strictagent", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.9.9.3"},
    )
    form = {
        "first_name": "No",
        "last_name": "Token",
        "email": "no.token@example.com",
        "source": "manual",
        "status": "new",
    }
    response = client.post("/leadview/add", data=form)
    assert response.status_code == 400
    assert "CSRF token is missing" in response.get_data(as_text=True)
    with strict_app.app_context():
        assert count(Lead) == 0
    form["csrf_token"] = _csrf_token(client, "/leadview/add")
    client.post("/leadview/add", data=form)
    with strict_app.app_context():
        assert count(Lead) == 1


def test_login_never_redirects_to_another_host(strict_app):
    client = strict_app.test_client()
    token = _csrf_token(client)
    response = client.post(
        "/login/?next=https://evil.example/steal",
        data={"username": "strictagent", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.9.9.4"},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_weak_passwords_are_refused(app):
    from flask_appbuilder.exceptions import PasswordComplexityValidationError
    from flask_appbuilder.validators import default_password_complexity

    with pytest.raises(PasswordComplexityValidationError):
        default_password_complexity("password1")
    default_password_complexity(PASSWORD)
    assert app.config["FAB_PASSWORD_COMPLEXITY_ENABLED"] is True


def test_production_refuses_the_default_secret_key(monkeypatch):
    settings = type("Prod", (config.ProductionConfig,), {"SECRET_KEY": config.DEFAULT_SECRET_KEY})
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(settings)
    short = type("Prod", (config.ProductionConfig,), {"SECRET_KEY": "short"})
    with pytest.raises(RuntimeError, match="32"):
        create_app(short)


def test_production_cookies_are_secure():
    assert config.ProductionConfig.SESSION_COOKIE_SECURE is True
    assert config.ProductionConfig.REMEMBER_COOKIE_SECURE is True
    assert config.Config.SESSION_COOKIE_HTTPONLY is True
    assert config.Config.RATELIMIT_ENABLED is True
