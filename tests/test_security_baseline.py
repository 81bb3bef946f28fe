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
    )
    prepare_schema(app)
    with app.app_context():
        make_staff("Agent", make_branch(), username="strictagent")
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
            data={"username": "strictagent", "password": "wrong", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.9.1"},
        )
        codes.append(response.status_code)
    assert codes[:3] == [302, 302, 302]
    assert 429 in codes[3:]


def test_api_login_is_rate_limited(strict_app):
    client = strict_app.test_client()
    body = {"username": "strictagent", "password": "wrong", "provider": "db"}
    codes = [
        client.post(
            "/api/v1/security/login", json=body, environ_base={"REMOTE_ADDR": "10.9.9.2"}
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


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
