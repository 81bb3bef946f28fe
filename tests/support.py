"""Test helpers: apps on SQLite and PostgreSQL, factories, logins."""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

import config
from app import create_app
from app.extensions import appbuilder, db
from app.leads.models import Lead
from app.leads.services import create_lead
from app.org.models import Branch, StaffProfile
from app.org.services import create_staff, prepare_branch
from app.security.sync import sync_roles

PASSWORD = "Test-Pass-2026"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Roles, permissions and the migration marker survive between tests; everything else is wiped.
KEPT_TABLES = {
    "alembic_version",
    "ab_role",
    "ab_permission",
    "ab_view_menu",
    "ab_permission_view",
    "ab_permission_view_role",
    "audit_log",  # append-only: the database refuses deletes (tests read their own rows)
    "ledger_account",  # the chart of accounts `flask crm init` seeds (accounts added go, below)
}

_counter = itertools.count(1)


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context (fresh `g` and DB session),
    as in production, even while the test itself holds an app context for its factories."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def build_app(database_url: str, **overrides: object) -> Flask:
    # Uploaded files go to a throw-away folder, never the repository's instance/.
    overrides.setdefault("STORAGE_LOCAL_ROOT", tempfile.mkdtemp(prefix="fincrm-files-"))
    settings = type(
        "Settings",
        (config.TestConfig,),
        {"SQLALCHEMY_DATABASE_URI": config.database_url(database_url), **overrides},
    )
    app = create_app(settings)
    app.test_client_class = IsolatedClient
    return app


def prepare_schema(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        sync_roles(appbuilder())
        from app.ledger.services import seed_chart

        seed_chart()
        db.session.commit()


def wipe_business_data(app: Flask) -> None:
    from app.ledger.models import Account
    from app.ledger.services import CHART

    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                db.session.execute(table.delete())
        # The seeded chart stays; an account a test opened (a currency's cash, wallets and
        # reserve, one added on the Accounts screen) goes, or the next test's trial balance
        # lists it (a demo with dollar wallets left "Total USD 0.00" on the ledger's tests).
        db.session.execute(Account.__table__.delete().where(Account.code.not_in(list(CHART))))
        db.session.commit()


def postgres_reachable_or_fail() -> None:
    import pytest

    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(
            "PostgreSQL is not reachable on 127.0.0.1:5432 "
            f"({exc.__class__.__name__}). Run `make services` (or apt-get install -y postgresql)."
        )


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    name = f"fincrm_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


# ---- factories (call inside an app context; they flush, tests commit) ----


def make_branch(code: str | None = None, tz: str = "Asia/Kolkata") -> Branch:
    code = code or f"B{next(_counter)}"
    branch = prepare_branch(Branch(code=code, name=f"Branch {code}", timezone=tz))
    db.session.add(branch)
    db.session.flush()
    return branch


def make_staff(role: str, branch: Branch, username: str | None = None) -> StaffProfile:
    username = username or f"{role.lower()}{next(_counter)}"
    return create_staff(
        username, PASSWORD, [role], branch, role, username.capitalize(), f"{username}@test.example"
    )


def make_lead(agent: StaffProfile, **fields: object) -> Lead:
    n = next(_counter)
    values = {
        "first_name": "Lead",
        "last_name": f"Number{n}",
        "email": f"lead{n}@test.example",
        "phone": f"+91 98{n:08d}",
        "assigned_agent_id": agent.user_id,
        "branch_id": agent.branch_id,
    }
    values.update(fields)
    lead = create_lead(**values)
    db.session.flush()
    return lead


def count(model: type) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {model.__tablename__}"))


# ---- sign-in ----


def login(client, username: str, password: str = PASSWORD):
    return client.post("/login/", data={"username": username, "password": password})


def api_token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post(
        "/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db", "refresh": False},
    )
    assert response.status_code == 200, response.json
    return response.json["access_token"]
