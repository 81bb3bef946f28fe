"""Start-up says nothing unless something is wrong: building the app and its OpenAPI document
logs no warning (FAB's "Filter type not supported for column", apispec's "Multiple schemas
resolved to the name"), so a real warning in an operator's log is not buried."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

from app.extensions import db
from tests.support import api_token, build_app, make_branch, make_staff, prepare_schema

ROOT = Path(__file__).resolve().parent.parent


def test_building_the_app_and_its_openapi_document_warns_of_nothing(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = build_app(f"sqlite:///{tmp_path / 'quiet.db'}")
        prepare_schema(app)
        with app.app_context():
            make_staff("Admin", make_branch(), "quiet_admin")
            db.session.commit()
            client = app.test_client()
            token = api_token(client, "quiet_admin")
            answer = client.get("/api/v1/_openapi", headers={"Authorization": f"Bearer {token}"})
            db.session.remove()
    assert answer.status_code == 200
    schemas = answer.json["components"]["schemas"]
    # two links to users on the user list: two nested schemas, each under its own name
    assert {"CrmUserApi.get_list.User", "CrmUserApi.get_list.User2"} <= set(schemas)
    # one schema class under one name: a task's POST and PUT bodies, a group's documented bodies
    assert {"TaskApi.post", "TaskApi.put", "CrmGroupApi.post", "GroupPostSchema"} <= set(schemas)
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == []
    said = [str(w.message) for w in caught if "Multiple schemas" in str(w.message)]
    said += [
        str(w.message) for w in caught if "has already been added to the spec" in str(w.message)
    ]
    assert said == []


def test_the_command_line_starts_without_warnings(tmp_path):
    env = {
        **os.environ,
        "CRM_INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PYTHONWARNINGS": "default",
    }
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "run", "crm", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Filter type not supported" not in output
    assert "Multiple schemas" not in output
    assert "Warning" not in output and "WARNING" not in output, output
