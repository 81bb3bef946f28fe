"""Fixtures: one app on SQLite and one on a throw-away PostgreSQL database per test session,
each wiped of business data after every test."""

from __future__ import annotations

import pytest

from tests.support import (
    build_app,
    postgres_reachable_or_fail,
    prepare_schema,
    temporary_postgres_database,
    wipe_business_data,
)


@pytest.fixture(scope="session")
def sqlite_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "fincrm-test.db"
    app = build_app(f"sqlite:///{path}")
    prepare_schema(app)
    return app


@pytest.fixture(scope="session")
def postgres_url():
    postgres_reachable_or_fail()
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_app(postgres_url):
    app = build_app(postgres_url)
    prepare_schema(app)
    yield app
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(sqlite_app):
    """The SQLite app inside an app context, wiped after the test."""
    with sqlite_app.app_context():
        yield sqlite_app
    wipe_business_data(sqlite_app)


@pytest.fixture
def pg_app(postgres_app):
    """The PostgreSQL app inside an app context, wiped after the test."""
    with postgres_app.app_context():
        yield postgres_app
    wipe_business_data(postgres_app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def pg_client(pg_app):
    return pg_app.test_client()


@pytest.fixture
def mailbox(pg_app, monkeypatch):
    """A real SMTP server (aiosmtpd) the PostgreSQL app sends its e-mail to, for this test."""
    from tests.smtp_server import smtp_server

    with smtp_server() as (box, port):
        monkeypatch.setitem(pg_app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(pg_app.config, "MAIL_PORT", port)
        box.port = port
        yield box
