"""``GET /health`` and ``GET /health/ready``: what a load balancer, an orchestrator or an
operator's probe asks, without signing in.

``/health`` answers that the process serves requests and touches nothing else, so a slow
database never gets a healthy web node restarted. ``/health/ready`` tries each part a request
may need (the database, Redis when ``REDIS_URL`` is set, the document storage) with short
timeouts and answers 503 naming the parts that are down. Neither answer carries an address,
a name of a host or bucket, or an error's text (which could hold a connection string): only
each part's name and ``ok`` or what went wrong, in a word. Probes come every few seconds, so
they are neither audited nor given a session.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

log = logging.getLogger(__name__)

health = Blueprint("health", __name__)

PROBE_TIMEOUT_SECONDS = 2
"""How long each readiness check may wait for its part (connect and answer)."""


def check_database() -> str:
    from app.extensions import db

    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            timeout_ms = PROBE_TIMEOUT_SECONDS * 1000
            connection.execute(text(f"SET statement_timeout = {timeout_ms}"))
        connection.execute(text("SELECT 1"))
    return "ok"


def check_redis() -> str | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    from redis import Redis

    client = Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def check_storage() -> str:
    config = current_app.config
    backend = str(config.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend == "s3":
        from app.core.storage import _s3_client

        client = _s3_client(
            config.get("S3_ENDPOINT_URL") or None,
            config.get("S3_REGION") or "us-east-1",
            PROBE_TIMEOUT_SECONDS,
            PROBE_TIMEOUT_SECONDS,
            1,
        )
        client.head_bucket(Bucket=config.get("S3_BUCKET"))
        return "ok"
    root = Path(str(config.get("STORAGE_LOCAL_ROOT") or ""))
    # The folder is made on the first upload: until then its nearest existing parent must be
    # writable.
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PermissionError("storage folder not writable")
    return "ok"


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "redis": check_redis,
    "storage": check_storage,
}


def _failure(exc: BaseException) -> str:
    """A word for what went wrong, never the error's text."""
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "timeout"
    if isinstance(exc, PermissionError):
        return "not writable"
    if type(exc).__name__ in {"ClientError", "NoSuchBucket"}:
        return "unavailable"
    return "unreachable"


@health.get("/health")
def liveness() -> ResponseReturnValue:
    return jsonify(status="ok")


@health.get("/health/ready")
def readiness() -> ResponseReturnValue:
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001  (any failure means "not ready", by name)
            log.warning("readiness: %s is down (%s)", name, type(exc).__name__)
            checks[name] = _failure(exc)
            continue
        if result is not None:
            checks[name] = result
    down = sorted(name for name, result in checks.items() if result != "ok")
    if down:
        body = {"status": "unavailable", "down": down, "checks": checks}
        return jsonify(body), 503
    return jsonify(status="ok", checks=checks)


def no_store(response):  # type: ignore[no-untyped-def]
    response.headers["Cache-Control"] = "no-store"
    return response


health.after_request(no_store)
