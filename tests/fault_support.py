"""Servers a fault test may stop and start without touching the machine's shared ones: a private
PostgreSQL cluster and a private Redis, each on its own port and data directory, and an RQ worker
process that can be killed with SIGKILL (the worker and the work horse it forked)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import config
from tests.smtp_server import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin"))),
)


def wait_until(condition, timeout: float = 30.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


# ---- PostgreSQL ----


def postgres_bin_dir() -> Path | None:
    for candidate in PG_BIN_DIRS:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary directory, on a port of its own."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir, self.root = bin_dir, root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "server.log"
        # initdb refuses to run as root: the cluster then belongs to the postgres user.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self.run_as, *args], capture_output=True, text=True, timeout=120, cwd=self.root
        )
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}\n{tail}")

    def init(self) -> None:
        if self.run_as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """A fast restart: every open connection is cut, committed data stays."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed "
            "(apt-get install -y postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="fincrm-pg-"))
    server = PrivatePostgres(bin_dir, root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(root, ignore_errors=True)


# ---- Redis ----


class PrivateRedis:
    """`redis-server` on its own port, nothing kept on disk; stop() and start() at will."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary, self.root = binary, root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(self.ping, timeout=20):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    root = Path(tempfile.mkdtemp(prefix="fincrm-redis-"))
    server = PrivateRedis(binary, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---- an RQ worker that can be killed ----


class WorkerProcess:
    """`python worker.py QUEUE...` as a real subprocess on the given database and Redis."""

    def __init__(self, database_url: str, redis_url: str, *queues: str, **extra_env: str) -> None:
        self.queues = queues or ("default",)
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "SECRET_KEY": config.TestConfig.SECRET_KEY,
            "CRM_INSTANCE_DIR": str(ROOT / "instance"),
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "worker.py", *self.queues],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def _children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill_9(self) -> None:
        """SIGKILL to the worker and its work horse (which runs in a process group of its own),
        as when the machine or container dies."""
        for pid in [*self._children(), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            for pid in self._children():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
