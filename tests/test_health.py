"""``/health`` and ``/health/ready`` as a probe sees them: no sign-in, no cookie, no secret in
the answer, and a part that is down named in a 503 within a few seconds."""

from __future__ import annotations

import socket
import time

import pytest

from app.core.storage import S3Storage
from tests.s3_server import aws_test_credentials, moto_s3_server
from tests.support import REDIS_TEST_URL, build_app


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(app, path: str):
    started = time.monotonic()
    response = app.test_client().get(path)
    return response, time.monotonic() - started


def assert_no_secrets(response, *secrets: str) -> None:
    assert "Set-Cookie" not in response.headers
    body = response.get_data(as_text=True)
    for secret in ("postgres", "127.0.0.1", "password", *secrets):
        assert secret not in body


def test_a_running_app_on_postgresql_is_live_and_ready(pg_app):
    live, _ = probe(pg_app, "/health")
    assert live.status_code == 200 and live.json == {"status": "ok"}
    ready, _ = probe(pg_app, "/health/ready")
    assert ready.status_code == 200
    assert ready.json["status"] == "ok"
    assert ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["storage"] == "ok"
    assert_no_secrets(live)
    assert_no_secrets(ready)


def test_redis_down_makes_the_app_unready_and_names_redis(pg_app, monkeypatch):
    port = closed_port()
    monkeypatch.setitem(pg_app.config, "REDIS_URL", f"redis://127.0.0.1:{port}/0")
    ready, seconds = probe(pg_app, "/health/ready")
    assert ready.status_code == 503
    assert ready.json["down"] == ["redis"]
    assert ready.json["checks"] == {"database": "ok", "redis": "unreachable", "storage": "ok"}
    assert seconds < 5
    assert_no_secrets(ready, str(port))
    # liveness does not depend on Redis
    assert probe(pg_app, "/health")[0].status_code == 200


def test_a_reachable_redis_is_checked(pg_app, monkeypatch):
    monkeypatch.setitem(pg_app.config, "REDIS_URL", REDIS_TEST_URL)
    ready, _ = probe(pg_app, "/health/ready")
    assert ready.status_code == 200
    assert ready.json["checks"]["redis"] == "ok"


def test_a_database_that_does_not_answer_leaves_the_app_live_but_unready():
    port = closed_port()
    app = build_app(f"postgresql://fincrm:s3cret-pw@127.0.0.1:{port}/fincrm")
    live, _ = probe(app, "/health")
    assert live.status_code == 200
    ready, seconds = probe(app, "/health/ready")
    assert ready.status_code == 503
    assert ready.json["down"] == ["database"]
    assert ready.json["checks"]["database"] == "unreachable"
    assert seconds < 5
    assert_no_secrets(ready, "s3cret-pw", "fincrm:", str(port))


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


def test_s3_storage_is_checked_and_a_missing_bucket_is_named(pg_app, monkeypatch, s3_endpoint):
    aws_test_credentials(monkeypatch)
    S3Storage("health-docs", endpoint_url=s3_endpoint).ensure_bucket()
    for key, value in {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": "health-docs",
        "S3_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setitem(pg_app.config, key, value)
    ready, _ = probe(pg_app, "/health/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"]["storage"] == "ok"

    monkeypatch.setitem(pg_app.config, "S3_BUCKET", "no-such-bucket-here")
    ready, seconds = probe(pg_app, "/health/ready")
    assert ready.status_code == 503
    assert ready.json["down"] == ["storage"]
    assert seconds < 5
    assert_no_secrets(ready, "no-such-bucket-here", s3_endpoint)


def test_a_local_storage_folder_that_cannot_be_made_is_named(pg_app, monkeypatch, tmp_path):
    """The folder's place is taken by a file: no upload could be stored."""
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    monkeypatch.setitem(pg_app.config, "STORAGE_BACKEND", "local")
    monkeypatch.setitem(pg_app.config, "STORAGE_LOCAL_ROOT", str(taken / "files"))
    ready, _ = probe(pg_app, "/health/ready")
    assert ready.status_code == 503
    assert ready.json["checks"]["storage"] == "not writable"
    assert_no_secrets(ready, str(taken))
