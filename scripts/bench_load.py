"""The load of `make bench`: ``BENCH_USERS`` (10) connections request one URL of the app served
by gunicorn for ``BENCH_SECONDS`` (15) after a ``BENCH_WARMUP_SECONDS`` (2) warm-up.

The driver is wrk (2 threads, ``scripts/bench_wrk.lua`` prints the figures as JSON): a few
megabytes of C beside the server, where a Python client would take a good share of the same two
cores. When wrk is not installed, a Python client with one thread per connection runs the same
load instead, and the figures say so. ``BENCH_DRIVER=python`` forces the fallback,
``BENCH_DRIVER=wrk`` refuses to run without wrk.

Every answer that is not 2xx, every socket error and every timeout is an error of the scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "scripts" / "bench_wrk.lua"
CONNECTIONS = int(os.environ.get("BENCH_USERS", "10"))
WRK_THREADS = 2
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
TIMEOUT_SECONDS = 60
"""A request slower than this is an error (wrk's own default, 2 s, would silently drop the slow
dashboards from the latencies)."""
DRIVER = os.environ.get("BENCH_DRIVER", "auto")


@dataclass
class Load:
    driver: str
    requests: int
    seconds: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)
    """Non-2xx answers by status (``"302"``), and ``connect``/``read``/``write``/``timeout``."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def describe_errors(self) -> str:
        return ", ".join(f"{kind} ×{count}" for kind, count in sorted(self.errors.items()))


def driver() -> str:
    """``wrk`` when installed (and not overridden), else ``python``."""
    if DRIVER not in ("auto", "wrk", "python"):
        raise SystemExit(f"BENCH_DRIVER={DRIVER}: auto, wrk or python")
    if DRIVER == "python":
        return "python"
    if shutil.which("wrk"):
        return "wrk"
    if DRIVER == "wrk":
        raise SystemExit("BENCH_DRIVER=wrk but wrk is not installed (apt-get install -y wrk)")
    return "python"


def measure(base: str, url: str, headers: dict[str, str]) -> Load:
    """The load on ``base + url`` with ``headers`` (a session cookie or a bearer token)."""
    if driver() == "wrk":
        run_wrk(base, url, headers, WARMUP_SECONDS)
        return run_wrk(base, url, headers, SECONDS)
    return run_python(base, url, headers)


def run_wrk(base: str, url: str, headers: dict[str, str], seconds: float) -> Load:
    command = [
        "wrk",
        f"--threads={min(WRK_THREADS, CONNECTIONS)}",  # wrk wants a connection per thread
        f"--connections={CONNECTIONS}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        f"--script={WRK_SCRIPT}",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    completed = subprocess.run(
        [*command, base + url], capture_output=True, text=True, timeout=seconds + 120
    )
    line = next(
        (line for line in completed.stdout.splitlines() if line.startswith("BENCH_JSON ")), None
    )
    if completed.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed on {url}:\n{completed.stdout}\n{completed.stderr}")
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    errors = {status: count for status, count in figures["statuses"].items() if count}
    for kind in ("connect", "read", "write"):
        if figures[f"{kind}_errors"]:
            errors[kind] = figures[f"{kind}_errors"]
    if figures["timeouts"]:
        errors["timeout"] = figures["timeouts"]
    done = figures["requests"]
    return Load(
        driver="wrk",
        requests=done,
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000 if done else None,
        p95_ms=figures["p95_us"] / 1000 if done else None,
        p99_ms=figures["p99_us"] / 1000 if done else None,
        errors=errors,
    )


def run_python(base: str, url: str, headers: dict[str, str]) -> Load:
    """The fallback: one thread and one keep-alive connection per user, same duration."""
    started = time.perf_counter()
    measuring_from = started + WARMUP_SECONDS
    until = measuring_from + SECONDS
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def user() -> None:
        session = requests.Session()
        while (sent := time.perf_counter()) < until:
            try:
                response = session.get(
                    base + url, headers=headers, allow_redirects=False, timeout=TIMEOUT_SECONDS
                )
                status = response.status_code
            except requests.Timeout:
                status = "timeout"
            except requests.RequestException:
                status = "connect"
            took = (time.perf_counter() - sent) * 1000
            if sent < measuring_from:
                continue
            with lock:
                if status == "timeout" or status == "connect":
                    errors[status] += 1
                    continue
                latencies.append(took)
                if not 200 <= status <= 299:
                    errors[str(status)] += 1

    threads = [threading.Thread(target=user) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(
        driver="python",
        requests=len(latencies),
        seconds=time.perf_counter() - measuring_from,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        errors=dict(errors),
    )


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(pct / 100 * len(ordered) + 0.5)) - 1))]
