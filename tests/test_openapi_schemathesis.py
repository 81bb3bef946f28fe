"""Schemathesis against the app's own OpenAPI document, on PostgreSQL, signed in as Admin with a
JWT: every operation, a bounded and derandomised number of examples each, on the demo data.
No answer may be a 5xx, and every answer must match the schema the document declares for it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import text

from app.core.demo import DEMO_PASSWORD, seed_demo
from app.extensions import db
from tests.support import api_token

EXAMPLES = 6
"""Examples per operation: about 300 operations in under three minutes on two cores."""


def _restart_empty_tables_sequences() -> None:
    """Ids start from 1 again in every emptied table, so the demo data gets the same ids
    however many tests ran before in this session (the generated examples hit the same rows)."""
    for table in db.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
            continue
        if db.session.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")')).scalar():
            continue
        sequence = db.session.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name}
        ).scalar()
        if sequence:
            db.session.execute(text(f"ALTER SEQUENCE {sequence} RESTART WITH 1"))


def _own_context_per_request(app):
    """Each request in an app context (and database session) of its own, as in production;
    otherwise every request would share the test's session, and one refused write would
    leave it unusable for the requests after it."""

    def wsgi(environ, start_response):
        with app.app_context():
            return list(app.wsgi_app(environ, start_response))

    return wsgi


@pytest.fixture
def demo_api(pg_app):
    _restart_empty_tables_sequences()
    db.session.commit()
    seed_demo(lead_count=30)
    db.session.commit()
    http = pg_app.test_client()
    token = api_token(http, "admin", DEMO_PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    loaded = schemathesis.openapi.from_wsgi(
        "/api/v1/_openapi", _own_context_per_request(pg_app), headers=headers
    )
    return loaded, headers


CHECKS = [not_a_server_error, response_schema_conformance]
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_answers_without_5xx_and_as_documented(demo_api):
    schema, headers = demo_api
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @SETTINGS
        @given(case=operation.as_strategy())
        def exercise(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every operation runs; the failures are listed together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:8000])
    assert operations > 250
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
