"""A real S3 endpoint for tests: moto's HTTP server in a subprocess.

Tests talk to it over HTTP exactly as the app talks to S3 (boto3 signing, path-style URLs,
presigned GETs fetched with urllib). Use ``moto_s3_server()`` from a session-scoped fixture and
``aws_test_credentials(monkeypatch)`` in every test that builds a client, so boto3 never picks up
real credentials or profiles from the machine. Remember STACK.md trap 10: moto accepts tampered
and expired presigned URLs, so signatures are checked with botocore, not through this server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Anything that could make boto3 find a real identity instead of the test one.
_REAL_IDENTITY_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
STARTUP_TIMEOUT = 20.0


def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3's credential chain at fake keys only (no ~/.aws files, no metadata service)."""
    for name in _REAL_IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_http(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP status means the server is up
    except OSError:
        return False
    return True


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start ``python -m moto.server`` on a free port, yield its endpoint URL, stop it."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _REAL_IDENTITY_VARS}
    env.update(TEST_CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="moto-") as tmp:
        log_path = Path(tmp) / "moto.log"
        with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall moto
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _answers_http(f"{endpoint}/moto-api/"):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"moto S3 server did not start on {endpoint}:\n{output}")
                time.sleep(0.05)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
