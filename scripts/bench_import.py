"""`make bench`: import 100,000 leads with duplicate checks into a throw-away PostgreSQL database.

Creates its own database, applies the migrations, adds an agent and 20,000 existing leads,
generates a deterministic file of 100,000 rows (1,000 duplicates of existing leads, 1,000
repeats of earlier rows, 500 bad e-mails), then runs the same service code as the Import leads
screen and the CLI: upload (parse and record), check (the job), import (re-check and insert, one
transaction). Prints rows per second for each phase and in total, then drops the database.

    BENCH_PG_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres  (default)
    BENCH_ROWS=100000                                                 (default)
"""

from __future__ import annotations

import csv
import io
import os
import random
import sys
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
EXISTING = ROWS // 5
DUPLICATES_OF_EXISTING = ROWS // 100
REPEATS_IN_FILE = ROWS // 100
BAD_EMAILS = ROWS // 200


def _phone(n: int) -> str:
    return f"+91 9{n:09d}"


def build_file(rng: random.Random) -> tuple[bytes, int]:
    """The CSV and how many of its rows should be valid."""
    rows = [
        [f"First{i}", f"Last{i}", f"person{i}@bench.example", _phone(500_000_000 + i), "Bench Co"]
        for i in range(ROWS)
    ]
    picks = rng.sample(range(1, ROWS), DUPLICATES_OF_EXISTING + REPEATS_IN_FILE + BAD_EMAILS)
    existing = picks[:DUPLICATES_OF_EXISTING]
    repeats = picks[DUPLICATES_OF_EXISTING : DUPLICATES_OF_EXISTING + REPEATS_IN_FILE]
    bad = picks[DUPLICATES_OF_EXISTING + REPEATS_IN_FILE :]
    for i in existing:  # same e-mail as one of the leads already in the database
        rows[i][2] = f"existing{rng.randrange(EXISTING)}@bench.example"
    for i in repeats:  # same phone as an earlier row that is neither bad nor a duplicate
        earlier = rng.randrange(i)
        while earlier in existing or earlier in repeats or earlier in bad:
            earlier = rng.randrange(i)
        rows[i][3] = rows[earlier][3]
    for i in bad:
        rows[i][2] = f"person{i}-at-bench.example"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["first_name", "last_name", "email", "phone", "company"])
    writer.writerows(rows)
    return out.getvalue().encode(), ROWS - len(picks)


def _rate(rows: int, seconds: float) -> str:
    return f"{seconds:7.2f} s  {rows / seconds:10,.0f} rows/s"


def run(url: str) -> None:
    from bench_data import bench_settings

    from app import create_app
    from app.extensions import appbuilder, db
    from app.leads import imports
    from app.leads.models import Lead
    from app.org.models import Branch
    from app.org.services import create_staff, prepare_branch
    from app.security.scoping import actor_for_user
    from app.security.sync import sync_roles

    app = create_app(bench_settings(url, CRM_MAX_IMPORT_BYTES=50 * 1024 * 1024))
    with app.app_context():
        from flask_migrate import upgrade
        from sqlalchemy import func, insert, select

        upgrade()
        sync_roles(appbuilder())
        branch = prepare_branch(Branch(code="BEN", name="Bench", timezone="Asia/Kolkata"))
        db.session.add(branch)
        db.session.flush()
        agent = create_staff(
            "bench.agent",
            "Bench-Pass-2026!",
            ["Agent"],
            branch,
            "Agent",
            "Bench",
            "b@bench.example",
        )
        db.session.flush()
        db.session.execute(
            insert(Lead),
            [
                {
                    "first_name": "Existing",
                    "last_name": f"Lead{i}",
                    "email": f"existing{i}@bench.example",
                    "phone": _phone(100_000_000 + i),
                    "source": "manual",
                    "status": "new",
                    "score": 0,
                    "branch_id": branch.id,
                    "assigned_agent_id": agent.user_id,
                }
                for i in range(EXISTING)
            ],
        )
        db.session.commit()
        data, expected_valid = build_file(random.Random(2026))
        actor = actor_for_user(agent.user_id)
        print(f"{ROWS:,} rows ({len(data) / 1e6:.1f} MB CSV) against {EXISTING:,} existing leads")

        started = time.perf_counter()
        lead_import = imports.upload_import("bench.csv", data, actor)
        db.session.commit()
        import_id = lead_import.id
        uploaded = time.perf_counter()
        imports.check_import_job(import_id)
        checked = time.perf_counter()
        imports.request_import(import_id)
        db.session.commit()
        status = imports.import_rows_job(import_id)
        finished = time.perf_counter()

        lead_import = db.session.get(imports.LeadImport, import_id)
        total_leads = db.session.scalar(select(func.count(Lead.id)))
        print(
            f"report: {lead_import.valid_rows:,} valid, {lead_import.invalid_rows:,} invalid, "
            f"{lead_import.duplicate_rows:,} duplicates; {status}: "
            f"{lead_import.imported_rows:,} imported ({total_leads:,} leads in the database)"
        )
        if status != "imported" or lead_import.imported_rows != expected_valid:
            raise SystemExit(f"unexpected result: expected {expected_valid:,} imported")
        print(f"upload (parse, record)      {_rate(ROWS, uploaded - started)}")
        print(f"check (rules, duplicates)   {_rate(ROWS, checked - uploaded)}")
        print(f"import (re-check, insert)   {_rate(ROWS, finished - checked)}")
        print(f"total                       {_rate(ROWS, finished - started)}")
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    name = f"fincrm_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        run(ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


if __name__ == "__main__":
    main()
