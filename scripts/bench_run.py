"""`make bench`: measure FinCRM on the database `scripts/bench_data.py` filled.

For every screen and API scenario:

1. **Statements**: the URL is requested in-process (Flask test client, same database, same
   user) with an SQLAlchemy ``after_cursor_execute`` listener recording each statement and its
   parameters; the second request is the one counted (the first warms caches).
2. **SQL time direct**: exactly those statements are run again straight over psycopg2, in one
   transaction that is rolled back, best of three: the database's share of the page.
3. **Latency under load**: gunicorn (2 workers) serves the app on 127.0.0.1; wrk with 10
   connections on 2 threads (``scripts/bench_load.py``; a Python client when wrk cannot be
   installed, and the table says which ran), signed in (session cookie for screens, JWT for the
   API), requests the URL for ``BENCH_SECONDS`` after a ``BENCH_WARMUP_SECONDS`` warm-up:
   p50, p95, p99, the number of requests, and every non-2xx answer or socket error.

Then the jobs (daily reminder sweeps, arrears) run in-process, each inside a transaction rolled
back at the end so every run measures the same day's work; the PDF writer renders a 200-page
leads list; and ``scripts/bench_import.py`` imports 100,000 leads (``BENCH_IMPORT=0`` skips it).

Prints a Markdown table and writes the figures as JSON to ``bench-results/``. Beside each
figure, console and table show the figure of the newest earlier run in ``bench-results/`` for
the same scenario (``184 ms (was 243)``), so a regression shows.

    BENCH_DATABASE_URL  (default postgresql://postgres@127.0.0.1:5432/fincrm_bench)
    BENCH_PASSWORD      (default the generator's)
    BENCH_USERS=10  BENCH_SECONDS=15  BENCH_WARMUP_SECONDS=2  BENCH_PORT=8099  BENCH_IMPORT=1
    BENCH_DRIVER=auto|wrk|python
    BENCH_WORKERS=2  BENCH_THREADS=1  (gunicorn processes; threads > 1 serve with gthread)
    BENCH_ONLY=REGEX  (only the scenarios, jobs, PDF or import whose name matches)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_data  # noqa: E402
import bench_load  # noqa: E402

DATABASE_URL = bench_data.DATABASE_URL
PASSWORD = bench_data.PASSWORD
PORT = int(os.environ.get("BENCH_PORT", "8099"))
RUN_IMPORT = os.environ.get("BENCH_IMPORT", "1") != "0"
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
"""gunicorn threads per worker: 1 is the sync worker; more serve with ``--worker-class
gthread`` (see docs/benchmarks.md for both measured)."""
RESULTS_DIR = ROOT / "bench-results"
ONLY = re.compile(os.environ.get("BENCH_ONLY", ""))
"""Only what matches runs (a few scenarios while working on one page); the default, all."""

PAGE_P95_MS = 150
DASHBOARD_P95_MS = 500
STATEMENT_BUDGET = 8
JOB_SECONDS = 10
PDF_PAGES_PER_SECOND = 200
PDF_PAGES = 200
IMPORT_SECONDS = 60

PDF_SCENARIO = "PDF of the leads list"
IMPORT_SCENARIO = "import of 100,000 leads"

DASHBOARDS = ("sales", "compliance", "lending", "brokerage", "billing", "forex")


@dataclass
class Result:
    scenario: str
    target: str
    kind: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    errors: int = 0
    driver: str | None = None
    statements: int | None = None
    sql_direct_ms: float | None = None
    seconds: float | None = None
    rate: float | None = None
    verdict: str = ""
    note: str = ""
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---- the app in-process: statements and their direct time ----------------------------------


def _settings():
    return bench_data.bench_settings(DATABASE_URL, RATELIMIT_ENABLED=False, WTF_CSRF_ENABLED=False)


class StatementLog:
    def __init__(self) -> None:
        self.on = False
        self.statements: list[tuple[str, Any, bool]] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            self.statements.append((statement, parameters, executemany))


def _direct_ms(statements: list[tuple[str, Any, bool]]) -> float:
    """Run the statements straight over psycopg2 (one transaction, rolled back); best of 3."""
    conn = psycopg2.connect(DATABASE_URL)
    best = float("inf")
    try:
        for _ in range(3):
            with conn.cursor() as cur:
                started = time.perf_counter()
                for statement, parameters, many in statements:
                    if many:
                        cur.executemany(statement, parameters)
                    else:
                        cur.execute(statement, parameters or None)
                    if cur.description is not None:
                        cur.fetchall()
                best = min(best, time.perf_counter() - started)
            conn.rollback()
    finally:
        conn.close()
    return best * 1000


def _filter_index(view_class_name: str, column: str, filter_class: str) -> int:
    """FAB's ``_flt_<n>_<column>`` number of a filter class for a column of a list screen."""
    from app.extensions import appbuilder

    for view in appbuilder().baseviews:
        if type(view).__name__ == view_class_name:
            filters = view._filters.get_search_filters()[column]
            names = [type(f).__name__ for f in filters]
            return names.index(filter_class)
    raise SystemExit(f"no screen {view_class_name}")


def _scenarios(app) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The HTTP scenarios, with ids looked up in the bench database."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        agent_id = db.session.scalar(text("SELECT id FROM ab_user WHERE username='agent.blr.01'"))
        client_id = db.session.scalar(
            text(
                "SELECT c.id FROM client c JOIN loan_application a ON a.client_id = c.id"
                " JOIN branch b ON b.id = c.branch_id WHERE b.code = 'BLR'"
                " ORDER BY c.id LIMIT 1"
            )
        )
        equal_status = _filter_index("LeadView", "status", "FilterEqual")
        agent_filter = _filter_index("LeadView", "assigned_agent", "FilterRelationOneToManyEqual")
        contains_last = _filter_index("LeadView", "last_name", "FilterContains")
        contains_phone = _filter_index("LeadView", "phone", "FilterContains")
    lists = "/leadview/list/"
    scenarios = [
        ("lead list, first page", "admin", lists, "page"),
        ("lead list, page 5,000", "admin", f"{lists}?page_LeadView=4999", "page"),
        (
            "lead list, status + agent",
            "admin",
            f"{lists}?_flt_{equal_status}_status=new&_flt_{agent_filter}_assigned_agent={agent_id}",
            "page",
        ),
        (
            "lead list, sorted by score",
            "admin",
            f"{lists}?_oc_LeadView=score&_od_LeadView=desc",
            "page",
        ),
        (
            "lead list, name fragment",
            "admin",
            f"{lists}?_flt_{contains_last}_last_name=harm",
            "page",
        ),
        ("lead list, phone", "admin", f"{lists}?_flt_{contains_phone}_phone=98012345", "page"),
        ("lead API list", "admin", "/api/v1/lead/?q=(page:0,page_size:25)", "api"),
        ("client timeline", "manager", f"/clientview/timeline/{client_id}", "page"),
    ]
    for audience in DASHBOARDS:
        for who in ("manager", "admin"):
            scenarios.append(
                (f"dashboard {audience} ({who})", who, f"/dashboards/{audience}/", "dashboard")
            )
    return [{"name": n, "who": w, "url": u, "kind": k} for n, w, u, k in scenarios], {
        "agent_id": agent_id,
        "client_id": client_id,
    }


USERNAMES = {"admin": "bench.admin", "manager": "manager.blr"}


def count_statements(app, scenarios: list[dict[str, Any]]) -> None:
    from sqlalchemy import event

    from app.extensions import db

    with app.app_context():
        engine = db.engine
    log = StatementLog()
    event.listen(engine, "after_cursor_execute", log)
    # Each request gets its own app context, as under gunicorn: an outer one would share `g`
    # (and with it the signed-in user) between the two users' requests.
    clients: dict[str, Any] = {}
    tokens: dict[str, str] = {}
    for who, username in USERNAMES.items():
        client = app.test_client()
        response = client.post("/login/", data={"username": username, "password": PASSWORD})
        if response.status_code not in (200, 302):
            raise SystemExit(f"could not sign in as {username}: {response.status_code}")
        clients[who] = client
        response = client.post(
            "/api/v1/security/login",
            json={"username": username, "password": PASSWORD, "provider": "db"},
        )
        tokens[who] = response.json["access_token"]
    for scenario in scenarios:
        client = clients[scenario["who"]]
        headers = (
            {"Authorization": f"Bearer {tokens[scenario['who']]}"}
            if scenario["kind"] == "api"
            else {}
        )
        client.get(scenario["url"], headers=headers)  # warm caches
        log.statements = []
        log.on = True
        response = client.get(scenario["url"], headers=headers)
        log.on = False
        scenario["status"] = response.status_code
        scenario["statements"] = len(log.statements)
        scenario["sql"] = [s for s, _, _ in log.statements]
        scenario["sql_direct_ms"] = _direct_ms(log.statements)
    event.remove(engine, "after_cursor_execute", log)
    engine.dispose()


# ---- gunicorn and the load --------------------------------------------------------------------


def start_gunicorn() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "RATELIMIT_ENABLED": "false",
        "CRM_INPROCESS_SCHEDULER": "false",
    }
    env.pop("REDIS_URL", None)
    threads = ["--worker-class", "gthread", "--threads", str(THREADS)] if THREADS > 1 else []
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--workers",
            str(WORKERS),
            *threads,
            "--bind",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
            "run:app",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    for _ in range(120):
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/login/", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise SystemExit("gunicorn stopped while starting")
        time.sleep(0.5)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not answer")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _signed_in(username: str) -> tuple[str, str]:
    """A session cookie (``Cookie`` header) and a JWT for ``username``, signed in over HTTP."""
    base = f"http://127.0.0.1:{PORT}"
    session = requests.Session()
    page = session.get(f"{base}/login/").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    data = {"username": username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    response = session.post(f"{base}/login/", data=data, allow_redirects=False)
    if response.status_code != 302 or "session" not in session.cookies:
        raise SystemExit(f"could not sign in as {username} over HTTP ({response.status_code})")
    # without the session cookie: a cookie-signed API write needs a CSRF token
    response = requests.post(
        f"{base}/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db"},
    )
    if response.status_code != 200:
        raise SystemExit(f"no API token for {username} ({response.status_code}: {response.text})")
    jwt = response.json()["access_token"]
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items()), jwt


def serving() -> str:
    """How gunicorn serves, for the console and the JSON."""
    workers = f"gunicorn {WORKERS} workers"
    return workers + (f" x {THREADS} threads (gthread)" if THREADS > 1 else " (sync)")


def run_http(scenarios: list[dict[str, Any]], previous: dict[str, Result]) -> list[Result]:
    process = start_gunicorn()
    try:
        sessions = {who: _signed_in(username) for who, username in USERNAMES.items()}
        results = []
        base = f"http://127.0.0.1:{PORT}"
        for scenario in scenarios:
            cookie, jwt = sessions[scenario["who"]]
            api = scenario["kind"] == "api"
            load = bench_load.measure(
                base,
                scenario["url"],
                {"Authorization": f"Bearer {jwt}"} if api else {"Cookie": cookie},
            )
            limit = DASHBOARD_P95_MS if scenario["kind"] == "dashboard" else PAGE_P95_MS
            result = Result(
                scenario=scenario["name"],
                target=f"p95 ≤ {limit} ms"
                + ("" if scenario["kind"] == "dashboard" else f", ≤ {STATEMENT_BUDGET} stmts"),
                kind=scenario["kind"],
                p50_ms=load.p50_ms,
                p95_ms=load.p95_ms,
                p99_ms=load.p99_ms,
                requests=load.requests,
                errors=load.error_count,
                driver=load.driver,
                statements=scenario["statements"],
                sql_direct_ms=scenario["sql_direct_ms"],
                url=scenario["url"],
                extra={
                    "sql": scenario["sql"],
                    "in_process_status": scenario["status"],
                    "load_errors": load.errors,
                    "load_seconds": load.seconds,
                },
            )
            over_budget = (
                scenario["kind"] != "dashboard" and scenario["statements"] > STATEMENT_BUDGET
            )
            notes = []
            if load.errors:
                # an error is the scenario's result, never averaged away
                result.verdict = "failed"
                notes.append(f"{load.error_count} errors: {load.describe_errors()}")
            elif load.p95_ms is None:
                result.verdict = "failed"
                notes.append("no request completed")
            else:
                missed = load.p95_ms > limit or over_budget
                result.verdict = "missed" if missed else "ok"
            if scenario["status"] != 200:
                notes.append(f"in-process answer {scenario['status']}")
            result.note = "; ".join(notes)
            was = previous.get(result.scenario)

            def figure(name: str, fmt: str, result: Result = result, was: Result | None = was):
                return _cell(getattr(result, name), fmt) + _was(result, was, name, fmt)

            print(
                f"  {result.scenario:38} p50 {figure('p50_ms', '.1f')} ms  "
                f"p95 {figure('p95_ms', '.1f')} ms  p99 {figure('p99_ms', '.1f')} ms  "
                f"{figure('statements', 'd')} stmts  SQL {figure('sql_direct_ms', '.1f')} ms  "
                f"{figure('requests', ',')} requests ({load.driver})  "
                f"errors {load.error_count}{' ' + load.describe_errors() if load.errors else ''}",
                flush=True,
            )
            results.append(result)
        return results
    finally:
        stop_gunicorn(process)


# ---- jobs, PDF, import ------------------------------------------------------------------------


def _rolled_back(app, job):
    """Run ``job`` with its commits turned into savepoints of one transaction rolled back at the
    end: every bench run measures the same day's work."""
    from flask_sqlalchemy.session import Session

    from app.extensions import db

    class Pinned(Session):
        def get_bind(self, *args: Any, **kwargs: Any):
            return self.bind

    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        app_session = db.session
        db.session.remove()
        db.session = db._make_scoped_session(
            {"class_": Pinned, "bind": connection, "join_transaction_mode": "create_savepoint"}
        )
        try:
            started = time.perf_counter()
            report = job()
            seconds = time.perf_counter() - started
        finally:
            db.session.remove()
            db.session = app_session
            outer.rollback()
            connection.close()
    return seconds, report


def run_jobs(app, previous: dict[str, Result]) -> list[Result]:
    from app.leads.follow_ups import sweep_follow_ups
    from app.lending.jobs import send_loan_reminders, update_arrears
    from app.tasks.services import send_task_reminders

    jobs = [
        (name, job)
        for name, job in (
            ("daily reminders: loans and notes", send_loan_reminders),
            ("daily reminders: lead follow-ups", sweep_follow_ups),
            ("daily reminders: tasks", send_task_reminders),
            ("arrears job", update_arrears),
        )
        if ONLY.search(name)
    ]
    if jobs:
        print("jobs (each rolled back afterwards) ...", flush=True)
    results = []
    for name, job in jobs:
        seconds, report = _rolled_back(app, job)
        result = Result(
            scenario=name,
            target=f"≤ {JOB_SECONDS} s",
            kind="job",
            seconds=seconds,
            verdict="ok" if seconds <= JOB_SECONDS else "missed",
            note=", ".join(f"{k} {v:,}" for k, v in report.items()),
        )
        was = _was(result, previous.get(name), "seconds", ".2f")
        print(f"  {name:38} {seconds:6.2f} s{was}  ({result.note})", flush=True)
        results.append(result)
    return results


def run_pdf(app, previous: dict[str, Result]) -> Result:
    import io

    from pypdf import PdfReader
    from sqlalchemy import select

    from app.exports.writers import write_pdf
    from app.extensions import db
    from app.leads.models import Lead
    from app.reports.registry import Table

    columns = ["First name", "Last name", "E-mail", "Phone", "Status", "Score", "Created"]
    with app.app_context():
        rows = db.session.execute(
            select(
                Lead.first_name,
                Lead.last_name,
                Lead.email,
                Lead.phone,
                Lead.status,
                Lead.score,
                Lead.created_at,
            )
            .order_by(Lead.id)
            .limit(PDF_PAGES * 60)
        ).all()
        db.session.remove()
    # Enough rows for PDF_PAGES pages: find how many fit a page, then render that many pages.
    probe = io.BytesIO()
    write_pdf(Table("Leads", columns, iter(rows[:400])), probe)
    per_page = 400 / len(PdfReader(io.BytesIO(probe.getvalue())).pages)
    wanted = rows[: int(per_page * PDF_PAGES * 1.1)]  # a little over: at least PDF_PAGES
    out = io.BytesIO()
    started = time.perf_counter()
    write_pdf(Table("Leads", columns, iter(wanted)), out)
    seconds = time.perf_counter() - started
    pages = len(PdfReader(io.BytesIO(out.getvalue())).pages)
    rate = pages / seconds
    was = _was(
        Result(PDF_SCENARIO, "", "pdf", rate=rate), previous.get(PDF_SCENARIO), "rate", ".0f"
    )
    print(
        f"  PDF: {pages} pages, {len(wanted):,} rows in {seconds:.2f} s = {rate:.0f}{was} pages/s"
    )
    return Result(
        scenario=f"{PDF_SCENARIO} ({pages} pages)",
        target=f"≥ {PDF_PAGES_PER_SECOND} pages/s",
        kind="pdf",
        seconds=seconds,
        rate=rate,
        verdict="ok" if rate >= PDF_PAGES_PER_SECOND else "missed",
        note=f"{len(wanted):,} rows, {len(out.getvalue()) / 1e6:.1f} MB",
    )


def run_import() -> Result:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_import.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(completed.stdout, end="")
    total = re.search(r"^total\s+([\d.]+) s", completed.stdout, re.M)
    if completed.returncode != 0 or total is None:
        print(completed.stderr[-3000:], file=sys.stderr)
        return Result(IMPORT_SCENARIO, f"≤ {IMPORT_SECONDS} s", "import", verdict="failed")
    seconds = float(total.group(1))
    phases = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(upload|check|import) .*?([\d.]+) s", completed.stdout, re.M)
    }
    return Result(
        scenario=IMPORT_SCENARIO,
        target=f"≤ {IMPORT_SECONDS} s",
        kind="import",
        seconds=seconds,
        rate=100_000 / seconds,
        verdict="ok" if seconds <= IMPORT_SECONDS else "missed",
        note=", ".join(f"{k} {v:.1f} s" for k, v in phases.items()),
    )


# ---- report -----------------------------------------------------------------------------------


def _cell(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _was(result: Result, previous: Result | None, name: str, fmt: str) -> str:
    """`` (was X)``: the figure ``name`` of the same scenario in the previous run, when both
    runs have it."""
    if previous is None or getattr(result, name) is None or getattr(previous, name) is None:
        return ""
    return f" (was {format(getattr(previous, name), fmt)})"


def _key(result: Result) -> str:
    """A scenario's name across runs (the PDF's names its page count)."""
    return PDF_SCENARIO if result.kind == "pdf" else result.scenario


def previous_results(out_dir: Path = RESULTS_DIR) -> tuple[str | None, dict[str, Result]]:
    """Each scenario's result in the newest earlier run that measured it (a run with
    ``BENCH_ONLY`` measured only some), and the stamp of the newest run."""
    runs = sorted(out_dir.glob("bench-*.json")) if out_dir.is_dir() else []
    newest, found = None, {}
    for path in reversed(runs):
        try:
            saved = json.loads(path.read_text())
            results = [Result(**r) for r in saved["results"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a run cut short or of an older shape
        newest = newest or saved.get("when", path.stem)
        for result in results:
            found.setdefault(_key(result), result)
    return newest, found


def markdown(results: list[Result], previous: dict[str, Result] | None = None) -> str:
    """The table of docs/benchmarks.md; beside each figure, in brackets, the previous run's."""
    previous = previous or {}
    lines = [
        "| scenario | target | p50 | p95 | p99 | load | statements | SQL time direct | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        was = previous.get(_key(r))

        def ms(name: str, r: Result = r, was: Result | None = was) -> str:
            value = getattr(r, name)
            return "" if value is None else f"{value:.0f} ms" + _was(r, was, name, ".0f")

        p99 = load = ""
        if r.driver is not None:
            p50, p95, p99 = ms("p50_ms"), ms("p95_ms"), ms("p99_ms")
            load = f"{r.driver}, {r.requests:,} req" + _was(r, was, "requests", ",")
        elif r.kind == "pdf":
            p50 = f"{r.rate:.0f} pages/s" + _was(r, was, "rate", ".0f")
            p95 = f"({r.seconds:.2f} s)"
        else:
            p50, p95 = _cell(r.seconds, ".2f") + " s" + _was(r, was, "seconds", ".2f"), ""
        sql = (
            ""
            if r.sql_direct_ms is None
            else f"{r.sql_direct_ms:.1f} ms" + _was(r, was, "sql_direct_ms", ".1f")
        )
        statements = (
            "" if r.statements is None else str(r.statements) + _was(r, was, "statements", "d")
        )
        verdict = r.verdict + (f"; {r.note}" if r.note else "")
        lines.append(
            f"| {r.scenario} | {r.target} | {p50} | {p95} | {p99} | {load} | {statements} | {sql}"
            f" | {verdict} |"
        )
    return "\n".join(lines)


def require_filled() -> None:
    """Stop with a message unless scripts/bench_data.py has filled the bench database."""
    admin_url, name = bench_data._admin_url(DATABASE_URL)
    admin = psycopg2.connect(admin_url)
    try:
        if not bench_data._filled(admin, name):
            raise SystemExit(f"{name} is not filled: run scripts/bench_data.py first")
    finally:
        admin.close()


def main() -> None:
    require_filled()
    name = bench_data._admin_url(DATABASE_URL)[1]
    from app import create_app

    app = create_app(_settings())
    previous_stamp, previous = previous_results()
    if previous_stamp:
        print(f"previous run: bench-results/ {previous_stamp} (its figures in brackets)")
    started = time.perf_counter()
    scenarios, ids = _scenarios(app)
    scenarios = [s for s in scenarios if ONLY.search(s["name"])]
    results: list[Result] = []
    if scenarios:
        print(f"statements per request (in-process), {len(scenarios)} scenarios ...", flush=True)
        count_statements(app, scenarios)
        print(
            f"load: {bench_load.driver()}, {bench_load.CONNECTIONS} connections,"
            f" {bench_load.SECONDS:.0f} s per scenario after {bench_load.WARMUP_SECONDS:.0f} s"
            f" of warm-up; {serving()}",
            flush=True,
        )
        results += run_http(scenarios, previous)
    results += run_jobs(app, previous)
    if ONLY.search(PDF_SCENARIO):
        results.append(run_pdf(app, previous))
    if RUN_IMPORT and ONLY.search(IMPORT_SCENARIO):
        print("import bench (scripts/bench_import.py) ...", flush=True)
        results.append(run_import())
    table = markdown(results, previous)
    print()
    print(table)
    out_dir = RESULTS_DIR
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "when": stamp,
                "database": name,
                "data_version": bench_data.VERSION,
                "driver": bench_load.driver(),
                "serving": serving(),
                "previous": previous_stamp,
                "connections": bench_load.CONNECTIONS,
                "seconds_per_scenario": bench_load.SECONDS,
                "warmup_seconds": bench_load.WARMUP_SECONDS,
                "ids": ids,
                "seconds": time.perf_counter() - started,
                "results": [asdict(r) for r in results],
                "markdown": table,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nsaved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
