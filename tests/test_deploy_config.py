"""docker-compose.yml gives every app service the settings production requires (judged by
app.core.config_check), and flask crm check-config names what is missing or unsafe."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from app.core.config_check import check_settings, make_env

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "scheduler", "init")


def parse_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = variables.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and (current is None or (op == ":-" and not current)):
            return arg
        return current or ""

    pattern = r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:\?|\?|:-|-)(?P<arg>[^}]*))?\}"
    return re.sub(pattern, replace, value)


def resolved(env_path: Path) -> tuple[dict, dict[str, dict[str, str]]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    variables = parse_env_file(env_path)
    environments = {}
    for name, service in compose["services"].items():
        env: dict[str, str] = {}
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            assert env_file == ".env"
            env.update(parse_env_file(env_path))
        for key, value in (service.get("environment") or {}).items():
            env[key] = interpolate(str(value), variables)
        environments[name] = env
    return compose, environments


@pytest.fixture
def made_env(tmp_path, app):
    result = app.test_cli_runner().invoke(args=["crm", "make-env"])
    assert result.exit_code == 0
    path = tmp_path / ".env"
    path.write_text(result.output)
    return path


def test_every_app_service_has_what_production_requires(made_env):
    compose, environments = resolved(made_env)
    for name in APP_SERVICES:
        failing = [str(p) for p in check_settings(environments[name]) if p.fails]
        assert failing == [], (name, failing)
    db = environments["db"]
    assert f":{db['POSTGRES_PASSWORD']}@db:5432/" in environments["web"]["DATABASE_URL"]


def test_one_scheduler_workers_and_init_first(made_env):
    compose, _ = resolved(made_env)
    services = compose["services"]
    schedulers = [n for n, s in services.items() if "--scheduler" in (s.get("command") or [])]
    assert schedulers == ["scheduler"]
    assert services["worker"]["command"][:3] == ["python", "worker.py", "--no-scheduler"]
    from app.core.jobs import QUEUES

    assert set(services["worker"]["command"][3:]) == set(QUEUES)
    assert services["init"]["command"] == ["flask", "--app", "run", "crm", "init"]
    for name in ("web", "worker", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully"
    assert "/health/ready" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["db"]["image"].startswith("postgres:15")
    assert "healthcheck" in services["db"]


def test_documents_go_to_the_stacks_s3_service(made_env):
    compose, environments = resolved(made_env)
    services = compose["services"]
    assert "healthcheck" in services["s3"]
    web = environments["web"]
    assert web["STORAGE_BACKEND"] == "s3"
    assert web["S3_ENDPOINT_URL"] == "http://s3:9000"
    assert environments["s3"]["MINIO_ROOT_USER"] == web["AWS_ACCESS_KEY_ID"]
    assert environments["s3"]["MINIO_ROOT_PASSWORD"] == web["AWS_SECRET_ACCESS_KEY"]
    assert environments["s3-bucket"]["S3_BUCKET"] == web["S3_BUCKET"]
    for name in ("web", "worker", "scheduler"):
        condition = services[name]["depends_on"]["s3-bucket"]["condition"]
        assert condition == "service_completed_successfully"


def test_env_example_is_refused():
    _, environments = resolved(ROOT / ".env.example")
    named = {p.setting for p in check_settings(environments["web"]) if p.fails}
    assert {"SECRET_KEY", "CRM_ENCRYPTION_KEYS", "CRM_LOOKUP_HASH_KEY"} <= named
    assert {"AWS_SECRET_ACCESS_KEY", "DATABASE_URL"} <= named


def good_production(monkeypatch, app) -> dict[str, str]:
    values = {
        "CRM_ENV": "production",
        "SECRET_KEY": "s" * 8 + os.urandom(24).hex(),
        "CRM_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "CRM_LOOKUP_HASH_KEY": os.urandom(24).hex(),
        "CRM_BACKUP_KEY": Fernet.generate_key().decode(),
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://fincrm:pw@db:5432/fincrm",
        "REDIS_URL": "redis://redis:6379/0",
        "RATELIMIT_STORAGE_URI": "redis://redis:6379/1",
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": "fincrm-documents",
        "FAB_SAFE_REDIRECT_HOSTS": ["crm.example.org"],
    }
    for key, value in values.items():
        monkeypatch.setitem(app.config, key, value)
    return values


def test_check_config_passes_a_good_configuration(app, monkeypatch):
    good_production(monkeypatch, app)
    result = app.test_cli_runner().invoke(args=["crm", "check-config"])
    assert result.exit_code == 0, result.output
    assert "production settings OK" in result.output


@pytest.mark.parametrize(
    ("key", "value", "setting"),
    [
        ("SECRET_KEY", "fincrm-development-key-change-me-0123456789abcdef", "SECRET_KEY"),
        ("SECRET_KEY", "short-secret-value", "SECRET_KEY"),
        ("CRM_ENCRYPTION_KEYS", ["not-a-fernet-key-at-all"], "CRM_ENCRYPTION_KEYS"),
        ("CRM_ENCRYPTION_KEYS", [], "CRM_ENCRYPTION_KEYS"),
        ("CRM_LOOKUP_HASH_KEY", "tooshortlookupkey", "CRM_LOOKUP_HASH_KEY"),
        ("CRM_BACKUP_KEY", None, "CRM_BACKUP_KEY"),
        ("CRM_BACKUP_KEY", "not-base64-of-32-bytes", "CRM_BACKUP_KEY"),
        ("SQLALCHEMY_DATABASE_URI", "sqlite:////srv/fincrm.db", "DATABASE_URL"),
        ("REDIS_URL", None, "REDIS_URL"),
        ("RATELIMIT_STORAGE_URI", "memory://", "RATELIMIT_STORAGE_URI"),
        ("S3_BUCKET", "", "S3_BUCKET"),
        ("FAB_SAFE_REDIRECT_HOSTS", [], "CRM_SAFE_REDIRECT_HOSTS"),
    ],
)
def test_check_config_names_each_unsafe_setting(app, monkeypatch, key, value, setting):
    values = good_production(monkeypatch, app)
    monkeypatch.setitem(app.config, key, value)
    result = app.test_cli_runner().invoke(args=["crm", "check-config"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if f": {setting}: " in line]
    assert lines, result.output
    for secret in ("SECRET_KEY", "CRM_LOOKUP_HASH_KEY"):
        assert values[secret] not in result.output
    if key in ("SECRET_KEY", "CRM_LOOKUP_HASH_KEY", "CRM_ENCRYPTION_KEYS"):
        assert str(value[0] if isinstance(value, list) and value else value) not in result.output


def test_local_storage_is_a_warning_not_a_failure(app, monkeypatch, tmp_path):
    good_production(monkeypatch, app)
    monkeypatch.setitem(app.config, "STORAGE_BACKEND", "local")
    monkeypatch.setitem(app.config, "STORAGE_LOCAL_ROOT", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["crm", "check-config"])
    assert result.exit_code == 0
    assert "warning: STORAGE_BACKEND:" in result.output


def test_make_env_keys_are_fresh_and_valid():
    first, second = make_env(), make_env()
    assert first != second
    values = dict(line.split("=", 1) for line in first.splitlines() if "=" in line)
    Fernet(values["CRM_ENCRYPTION_KEYS"].encode())
    # The backup key is one the backup code accepts, and differs from the PII key.
    from app.core.backup import backup_key

    assert len(backup_key({"CRM_BACKUP_KEY": values["CRM_BACKUP_KEY"]})) == 32
    assert values["CRM_BACKUP_KEY"] != values["CRM_ENCRYPTION_KEYS"]


def test_check_config_runs_where_the_app_refuses_to_start(tmp_path):
    """In production without secrets the app refuses to start, but check-config still runs."""
    import subprocess
    import sys

    keep = ("PATH", "HOME", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(CRM_ENV="production", CRM_INSTANCE_DIR=str(tmp_path))
    flask = [sys.executable, "-m", "flask", "--app", "run", "crm"]
    result = subprocess.run(
        [*flask, "check-config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    for setting in ("SECRET_KEY", "CRM_ENCRYPTION_KEYS", "CRM_LOOKUP_HASH_KEY", "REDIS_URL"):
        assert f": {setting}: " in result.stderr
    assert "fincrm-development-key" not in result.stderr + result.stdout
    refused = subprocess.run(
        [*flask, "init"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0
    assert "refuses to start in production" in refused.stderr
