"""Worker (Python) time per request of the list screens, in-process on the bench database.

Signs in as ``BENCH_PROFILE_USER`` (default ``bench.admin``) with the app's test client and
requests each list ``BENCH_PROFILE_REQUESTS`` times (default 40) after three warm-up requests:
the CPU time of the process per request (min, first quartile, median) and the wall time. The
budget under load is about 25 ms of a worker per request (docs/benchmarks.md).
``BENCH_PROFILE=<name>`` then runs cProfile over that many requests of the scenario ``name``
and prints the top functions (``BENCH_PROFILE_SORT``, default cumulative) and writes
``bench-results/profile.prof``.

    .venv/bin/python scripts/bench_profile.py
    BENCH_PROFILE="lead list, first page" .venv/bin/python scripts/bench_profile.py
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_run  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "40"))
USER = os.environ.get("BENCH_PROFILE_USER", "bench.admin")
OTHER_LISTS = {
    "client list": "/clientview/list/",
    "loan application list": "/loanapplicationview/list/",
    "invoice list": "/invoiceview/list/",
}


def main() -> None:
    from app import create_app

    app = create_app(bench_run._settings())
    scenarios, _ = bench_run._scenarios(app)
    urls = {s["name"]: s["url"] for s in scenarios if s["name"].startswith("lead list")}
    urls.update(OTHER_LISTS)
    client = app.test_client()
    response = client.post("/login/", data={"username": USER, "password": bench_run.PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {USER}: {response.status_code}")
    for name, url in urls.items():
        if not bench_run.ONLY.search(name):
            continue
        for _ in range(3):
            if client.get(url).status_code != 200:
                raise SystemExit(f"{url} does not answer 200")
        cpu, wall = [], []
        for _ in range(REQUESTS):
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            client.get(url)
            cpu.append((time.process_time() - cpu_started) * 1000)
            wall.append((time.perf_counter() - wall_started) * 1000)
        cpu.sort()
        wall.sort()
        print(
            f"{name:26} worker CPU min {cpu[0]:5.1f} q1 {cpu[REQUESTS // 4]:5.1f}"
            f" median {cpu[REQUESTS // 2]:5.1f} ms   wall median {wall[REQUESTS // 2]:5.1f} ms",
            flush=True,
        )
    profiled = os.environ.get("BENCH_PROFILE")
    if profiled:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(REQUESTS):
            client.get(urls[profiled])
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(60)
        print(out.getvalue())
        bench_run.RESULTS_DIR.mkdir(exist_ok=True)
        profile.dump_stats(bench_run.RESULTS_DIR / "profile.prof")


if __name__ == "__main__":
    main()
