"""Fifty people at once for two minutes, against the app as it is deployed: gunicorn with two
workers on PostgreSQL and Redis. They browse lists and records, add leads on the form and the API,
write notes and give tasks. Not one request may fail, and afterwards every record a user was told
was saved is in the database."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import select

import config
from app.core.types import utcnow
from app.extensions import db
from app.leads.models import Interaction, Lead
from app.tasks.models import Task
from tests.fault_support import wait_until
from tests.smtp_server import free_port
from tests.support import PASSWORD, REDIS_TEST_URL, make_branch, make_lead, make_staff

ROOT = Path(__file__).resolve().parent.parent
USERS = 50
SECONDS = float(os.environ.get("CRM_LOAD_TEST_SECONDS", "120"))
AGENTS = 10


@pytest.fixture
def server(pg_app, tmp_path):
    """gunicorn, two workers, on the session's PostgreSQL database and the test Redis."""
    queue = redis.Redis.from_url(REDIS_TEST_URL)
    queue.flushdb()
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": pg_app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": REDIS_TEST_URL,
        "SECRET_KEY": config.TestConfig.SECRET_KEY,
        "RATELIMIT_ENABLED": "false",  # fifty sign-ins from one address are not an attack here
        "CRM_INSTANCE_DIR": str(tmp_path),
        "STORAGE_LOCAL_ROOT": str(tmp_path / "files"),
        "PYTHONPATH": str(ROOT),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "run:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{base}/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_until(answers, timeout=60), log.read_text(errors="replace")[-3000:]
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        queue.flushdb()


@pytest.fixture
def people(pg_app):
    branch = make_branch("LOAD")
    agents = [make_staff("Agent", branch) for _ in range(AGENTS)]
    leads = {agent.user.username: [make_lead(agent).id for _ in range(5)] for agent in agents}
    db.session.commit()
    return [(agent.user.username, agent.user_id) for agent in agents], leads


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'id="csrf_token"[^>]*value="([^"]+)"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(base: str, username: str) -> tuple[requests.cookies.RequestsCookieJar, dict]:
    """A signed-in screen session (the login form, with its CSRF token) and an API token."""
    http = requests.Session()
    page = http.get(f"{base}/login/", timeout=60)
    form = {"username": username, "password": PASSWORD, "csrf_token": _csrf(page.text)}
    assert (
        http.post(f"{base}/login/", data=form, allow_redirects=False, timeout=60).status_code == 302
    )
    token = requests.post(  # an API client of its own: no browser session, so no CSRF token
        f"{base}/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db"},
        timeout=60,
    )
    assert token.status_code == 200, token.text
    return http.cookies, {"Authorization": f"Bearer {token.json()['access_token']}"}


class User(threading.Thread):
    """One person at a desk (several may share a login, as in tabs): works until told to stop."""

    def __init__(self, base, account, lead_ids, signed_in, start, stop, results):
        super().__init__(daemon=True)
        self.base, (self.username, self.user_id) = base, account
        self.lead_ids, self.start_line, self.stop_flag = list(lead_ids), start, stop
        self.results = results
        self.random = random.Random(f"{self.username}-{id(self)}")
        self.http = requests.Session()
        cookies, self.auth = signed_in
        self.http.cookies.update(cookies)
        self.saved: dict[str, list[str]] = {"lead": [], "task": [], "note": []}

    def call(self, kind, method, path, expected, **kwargs):
        try:
            response = self.http.request(
                method, self.base + path, timeout=60, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            self.results.append((kind, f"connection error: {exc.__class__.__name__}"))
            return None
        self.results.append((kind, response.status_code))
        if response.status_code not in expected:
            self.results.append((kind, f"unexpected {response.status_code} on {method} {path}"))
            return None
        return response

    def run(self):
        self.start_line.wait()
        actions = [
            (self.lead_list, 4),
            (self.lead_page, 4),
            (self.task_list, 2),
            (self.api_leads, 3),
            (self.api_add_lead, 2),
            (self.form_add_lead, 1),
            (self.add_note, 2),
            (self.add_task, 1),
        ]
        choices, weights = zip(*actions, strict=True)
        while not self.stop_flag.is_set():
            self.random.choices(choices, weights)[0]()

    # ---- reads ----

    def lead_list(self):
        self.call("lead list", "GET", "/leadview/list/", {200})

    def lead_page(self):
        lead_id = self.random.choice(self.lead_ids)
        self.call("lead page", "GET", f"/leadview/show/{lead_id}", {200})

    def task_list(self):
        self.call("task list", "GET", "/taskview/list/", {200})

    def api_leads(self):
        self.call("api lead list", "GET", "/api/v1/lead/", {200}, headers=self.auth)

    # ---- writes ----

    def _email(self) -> str:
        return f"load-{uuid.uuid4().hex[:12]}@example.com"

    def api_add_lead(self):
        email = self._email()
        answer = self.call(
            "api add lead",
            "POST",
            "/api/v1/lead/",
            {201},
            json={"first_name": "Load", "last_name": "Api", "email": email},
            headers=self.auth,
        )
        if answer is not None:
            self.saved["lead"].append(email)
            self.lead_ids.append(answer.json()["id"])

    def form_add_lead(self):
        page = self.call("lead form", "GET", "/leadview/add", {200})
        if page is None:
            return
        email = self._email()
        form = {
            "csrf_token": _csrf(page.text),
            "first_name": "Load",
            "last_name": "Form",
            "email": email,
            "source": "manual",
            "status": "new",
        }
        if self.call("form add lead", "POST", "/leadview/add", {302}, data=form) is not None:
            self.saved["lead"].append(email)

    def add_note(self):
        body = f"note {uuid.uuid4().hex}"
        payload = {"lead_id": self.random.choice(self.lead_ids), "kind": "note", "body": body}
        answer = self.call(
            "api add note", "POST", "/api/v1/interaction/", {201}, json=payload, headers=self.auth
        )
        if answer is not None:
            self.saved["note"].append(body)

    def add_task(self):
        title = f"Call back {uuid.uuid4().hex[:10]}"
        payload = {
            "title": title,
            "assignee_id": self.user_id,
            "due_at": (utcnow() + timedelta(days=1)).isoformat(),
            "priority": "normal",
        }
        answer = self.call(
            "api add task", "POST", "/api/v1/task/", {201}, json=payload, headers=self.auth
        )
        if answer is not None:
            self.saved["task"].append(title)


def test_fifty_users_for_two_minutes_get_no_error_and_every_saved_record_is_there(
    pg_app, server, people
):
    agents, leads = people
    results: list = []
    start, stop = threading.Barrier(USERS + 1), threading.Event()
    signed_in = {username: sign_in(server, username) for username, _ in agents}
    users = [
        User(
            server,
            agents[i % AGENTS],
            leads[agents[i % AGENTS][0]],
            signed_in[agents[i % AGENTS][0]],
            start,
            stop,
            results,
        )
        for i in range(USERS)
    ]
    for user in users:
        user.start()
    start.wait(timeout=60)
    began = time.monotonic()
    time.sleep(SECONDS)  # the length of the run, not a timing assertion
    stop.set()
    for user in users:
        user.join(timeout=120)
    elapsed = time.monotonic() - began

    errors = [outcome for _, outcome in results if not isinstance(outcome, int)]
    statuses = Counter(outcome for _, outcome in results if isinstance(outcome, int))
    by_kind = Counter(kind for kind, outcome in results if isinstance(outcome, int))
    print(f"\n{len(results)} requests in {elapsed:.0f} s by {USERS} users: {dict(statuses)}")
    print(f"by kind: {dict(by_kind)}")
    assert errors == [], Counter(errors).most_common(10)
    assert not [status for status in statuses if status >= 500]
    assert all(kind in by_kind for kind in ("api add lead", "form add lead", "api add note"))

    db.session.expire_all()
    saved_leads = {email for user in users for email in user.saved["lead"]}
    saved_notes = {body for user in users for body in user.saved["note"]}
    saved_tasks = {title for user in users for title in user.saved["task"]}
    assert saved_leads and saved_notes and saved_tasks
    stored_leads = set(db.session.scalars(select(Lead.email).where(Lead.first_name == "Load")))
    assert stored_leads == saved_leads
    assert set(db.session.scalars(select(Interaction.body))) == saved_notes
    assert set(db.session.scalars(select(Task.title))) == saved_tasks
