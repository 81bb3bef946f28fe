"""Production settings: the rules FinCRM refuses to start without, and a fresh ``.env``.

``check_settings`` takes a mapping of settings by their environment names (``SECRET_KEY``,
``DATABASE_URL``, ``CRM_SAFE_REDIRECT_HOSTS``...), as an operator writes them in ``.env`` or a
compose file, and answers every problem it finds. ``settings_from_config`` turns an app's
config into that mapping, so ``create_app``, ``flask crm check-config`` and the compose file's
test all judge by the same rules.

Each problem has a level:

* ``refuse``: ``create_app`` raises in production (secrets missing, weak, a published
  placeholder or not a key at all);
* ``unsafe``: the app starts (with a warning in the log) but must not run like this
  (SQLite, no Redis, per-process rate limits, storage without a bucket...);
* ``warning``: works, with a limit worth knowing (local storage does not scale out).

``flask crm check-config`` exits 1 on any ``refuse`` or ``unsafe`` problem. No message ever
carries a setting's value: only its name and what is wrong with it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFUSE = "refuse"
UNSAFE = "unsafe"
WARNING = "warning"

MIN_SECRET_LENGTH = 32
"""SECRET_KEY and CRM_LOOKUP_HASH_KEY: at least this many characters."""

PLACEHOLDER_MARKERS = ("replace-me", "change-me", "changeme", "placeholder")
"""A value holding one of these (any case) is a placeholder copied from an example file."""

SECRET_SETTINGS = (
    "SECRET_KEY",
    "CRM_ENCRYPTION_KEYS",
    "CRM_LOOKUP_HASH_KEY",
    "CRM_BACKUP_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "POSTGRES_PASSWORD",
)
"""Settings whose values are secrets: never printed, and refused when a placeholder."""

PLACEHOLDER_CHECKED = (
    *SECRET_SETTINGS,
    "DATABASE_URL",
    "CRM_READ_REPLICA_URL",
    "REDIS_URL",
    "RATELIMIT_STORAGE_URI",
)
"""Settings checked for placeholders (a URL may carry a password)."""

EXTERNAL_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
"""Read from the environment by other libraries (boto3), not kept in the app's config."""

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class Problem:
    setting: str
    level: str
    message: str

    @property
    def fails(self) -> bool:
        """Whether this problem makes ``check-config`` exit non-zero."""
        return self.level in (REFUSE, UNSAFE)

    def __str__(self) -> str:
        return f"{self.level}: {self.setting}: {self.message}"


def _text(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value).strip()


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def _public_secret_keys() -> set[str]:
    """Secret keys published in this repository (development and test defaults)."""
    import config

    return {config.DEFAULT_SECRET_KEY, config.TestConfig.SECRET_KEY}


def _check_secret_key(settings: Mapping[str, Any]) -> Iterable[Problem]:
    value = _text(settings, "SECRET_KEY")
    if not value:
        yield Problem("SECRET_KEY", REFUSE, "not set; set a random SECRET_KEY of 32+ characters")
    elif value in _public_secret_keys():
        yield Problem(
            "SECRET_KEY",
            REFUSE,
            "is the development default; set a random SECRET_KEY of 32+ characters",
        )
    elif len(value) < MIN_SECRET_LENGTH:
        yield Problem("SECRET_KEY", REFUSE, f"must be at least {MIN_SECRET_LENGTH} characters")


def _check_encryption_keys(settings: Mapping[str, Any]) -> Iterable[Problem]:
    from cryptography.fernet import Fernet

    raw = _text(settings, "CRM_ENCRYPTION_KEYS")
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        yield Problem(
            "CRM_ENCRYPTION_KEYS",
            REFUSE,
            "not set; PII is encrypted with it (comma-separated Fernet keys, newest first)",
        )
        return
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            yield Problem(
                "CRM_ENCRYPTION_KEYS",
                REFUSE,
                f"entry {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)",
            )


def _check_lookup_key(settings: Mapping[str, Any]) -> Iterable[Problem]:
    value = _text(settings, "CRM_LOOKUP_HASH_KEY")
    if not value:
        yield Problem(
            "CRM_LOOKUP_HASH_KEY",
            REFUSE,
            "not set; the look-up hashes of encrypted identifiers are keyed with it",
        )
    elif len(value) < MIN_SECRET_LENGTH:
        yield Problem(
            "CRM_LOOKUP_HASH_KEY", REFUSE, f"must be at least {MIN_SECRET_LENGTH} characters"
        )


def _check_placeholders(settings: Mapping[str, Any]) -> Iterable[Problem]:
    for name in PLACEHOLDER_CHECKED:
        if _is_placeholder(_text(settings, name)):
            yield Problem(name, REFUSE, "holds a placeholder; make real values with crm make-env")


def _check_environment(settings: Mapping[str, Any]) -> Iterable[Problem]:
    if _text(settings, "CRM_ENV") != "production":
        yield Problem(
            "CRM_ENV",
            UNSAFE,
            "is not production: the production refusals and secure cookies are off",
        )


def _check_database(settings: Mapping[str, Any]) -> Iterable[Problem]:
    value = _text(settings, "DATABASE_URL")
    if not value:
        yield Problem("DATABASE_URL", UNSAFE, "not set; production needs a postgresql:// URL")
    elif value.startswith("sqlite"):
        yield Problem(
            "DATABASE_URL",
            UNSAFE,
            "is SQLite; production needs PostgreSQL (one file cannot serve several processes)",
        )
    elif not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        yield Problem("DATABASE_URL", UNSAFE, "is not a PostgreSQL URL (postgresql://...)")
    replica = _text(settings, "CRM_READ_REPLICA_URL")
    if replica and _engine_of(replica) != _engine_of(value):
        yield Problem(
            "CRM_READ_REPLICA_URL",
            UNSAFE,
            "is not on the same database engine as DATABASE_URL (a replica of it is)",
        )


def _engine_of(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    return "postgresql" if scheme == "postgres" else scheme


def _check_redis(settings: Mapping[str, Any]) -> Iterable[Problem]:
    value = _text(settings, "REDIS_URL")
    if not value:
        yield Problem(
            "REDIS_URL",
            UNSAFE,
            "not set; jobs would run inside web requests and no worker could take them",
        )
    elif not value.startswith(("redis://", "rediss://", "unix://")):
        yield Problem("REDIS_URL", UNSAFE, "is not a Redis URL (redis://...)")


def _check_rate_limits(settings: Mapping[str, Any]) -> Iterable[Problem]:
    value = _text(settings, "RATELIMIT_STORAGE_URI") or "memory://"
    if value.startswith("memory://"):
        yield Problem(
            "RATELIMIT_STORAGE_URI",
            UNSAFE,
            "is memory:// (the default): each process counts login attempts on its own; "
            "use redis://",
        )


def _check_storage(settings: Mapping[str, Any]) -> Iterable[Problem]:
    backend = (_text(settings, "STORAGE_BACKEND") or "local").lower()
    if backend == "s3":
        if not _text(settings, "S3_BUCKET"):
            yield Problem("S3_BUCKET", UNSAFE, "not set; STORAGE_BACKEND=s3 needs a bucket")
        return
    if backend != "local":
        yield Problem("STORAGE_BACKEND", UNSAFE, "is neither s3 nor local")
        return
    root = _text(settings, "STORAGE_LOCAL_ROOT")
    if not root:
        yield Problem("STORAGE_LOCAL_ROOT", UNSAFE, "not set; STORAGE_BACKEND=local needs a folder")
        return
    path = Path(root)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        yield Problem("STORAGE_LOCAL_ROOT", UNSAFE, "is not a writable folder")
    yield Problem(
        "STORAGE_BACKEND",
        WARNING,
        "is local: documents stay on this machine, so a second web or worker machine "
        "cannot read them; use s3 to scale out",
    )


def _check_redirect_hosts(settings: Mapping[str, Any]) -> Iterable[Problem]:
    hosts = [h.strip() for h in _text(settings, "CRM_SAFE_REDIRECT_HOSTS").split(",") if h.strip()]
    if not hosts:
        yield Problem(
            "CRM_SAFE_REDIRECT_HOSTS",
            UNSAFE,
            "not set; name the host names users reach FinCRM by (comma-separated)",
        )
    elif all(h.lower() in LOOPBACK_HOSTS for h in hosts):
        yield Problem(
            "CRM_SAFE_REDIRECT_HOSTS",
            WARNING,
            "names only this machine (localhost); add the host name users reach FinCRM by",
        )


def _check_backup_key(settings: Mapping[str, Any]) -> Iterable[Problem]:
    import base64
    import binascii

    value = _text(settings, "CRM_BACKUP_KEY")
    if not value:
        yield Problem(
            "CRM_BACKUP_KEY", UNSAFE, "not set; backups (flask crm backup, the nightly job) refuse"
        )
        return
    try:
        length = len(base64.urlsafe_b64decode(value.encode()))
    except (binascii.Error, ValueError):
        length = 0
    if length != 32 and not _is_placeholder(value):
        yield Problem("CRM_BACKUP_KEY", UNSAFE, "must be urlsafe base64 of 32 bytes (make-env)")


RULES = (
    _check_environment,
    _check_secret_key,
    _check_encryption_keys,
    _check_lookup_key,
    _check_backup_key,
    _check_placeholders,
    _check_database,
    _check_redis,
    _check_rate_limits,
    _check_storage,
    _check_redirect_hosts,
)


def check_settings(settings: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``settings`` (environment names) for running in production."""
    problems: list[Problem] = []
    for rule in RULES:
        for problem in rule(settings):
            if problem not in problems:
                problems.append(problem)
    return problems


def settings_from_config(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An app's config as the environment settings it came from; the names boto3 reads
    (``AWS_*``) from ``environ`` (``os.environ`` unless given)."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {
        "CRM_ENV": config.get("CRM_ENV"),
        "SECRET_KEY": config.get("SECRET_KEY"),
        "CRM_ENCRYPTION_KEYS": _text(config, "CRM_ENCRYPTION_KEYS"),
        "CRM_LOOKUP_HASH_KEY": config.get("CRM_LOOKUP_HASH_KEY"),
        "CRM_BACKUP_KEY": config.get("CRM_BACKUP_KEY"),
        "DATABASE_URL": config.get("SQLALCHEMY_DATABASE_URI"),
        "CRM_READ_REPLICA_URL": config.get("CRM_READ_REPLICA_URL"),
        "REDIS_URL": config.get("REDIS_URL"),
        "RATELIMIT_STORAGE_URI": config.get("RATELIMIT_STORAGE_URI"),
        "STORAGE_BACKEND": config.get("STORAGE_BACKEND"),
        "STORAGE_LOCAL_ROOT": config.get("STORAGE_LOCAL_ROOT"),
        "S3_BUCKET": config.get("S3_BUCKET"),
        "S3_ENDPOINT_URL": config.get("S3_ENDPOINT_URL"),
        "CRM_SAFE_REDIRECT_HOSTS": _text(config, "FAB_SAFE_REDIRECT_HOSTS"),
    }
    for name in EXTERNAL_SETTINGS:
        if environ.get(name):
            settings[name] = environ[name]
    return settings


def refusal_message(problems: Iterable[Problem]) -> str | None:
    """The error ``create_app`` raises in production, or None when nothing is refused."""
    refused = [p for p in problems if p.level == REFUSE]
    if not refused:
        return None
    lines = "\n".join(f"  {p.setting}: {p.message}" for p in refused)
    return (
        "FinCRM refuses to start in production with these settings "
        "(flask --app run crm check-config lists every problem):\n" + lines
    )


def make_env(host: str = "localhost") -> str:
    """A fresh ``.env`` for docker-compose.yml: every secret random, nothing shared."""
    from cryptography.fernet import Fernet

    def token(length: int = 48) -> str:
        return secrets.token_urlsafe(length)

    base_url = "http://localhost:8080" if host in LOOPBACK_HOSTS else f"https://{host}"
    values = [
        ("# FinCRM secrets for docker-compose.yml, made by `flask --app run crm make-env`.", None),
        ("# Keep this file out of version control; losing CRM_ENCRYPTION_KEYS or", None),
        ("# CRM_LOOKUP_HASH_KEY loses the encrypted data. See docs/deployment.md.", None),
        ("SECRET_KEY", token()),
        ("CRM_ENCRYPTION_KEYS", Fernet.generate_key().decode()),
        ("CRM_LOOKUP_HASH_KEY", token()),
        # The key of the backup archives (`flask crm backup`); keep a copy away from them.
        ("CRM_BACKUP_KEY", Fernet.generate_key().decode()),
        ("POSTGRES_PASSWORD", token(24)),
        ("AWS_ACCESS_KEY_ID", "fincrm-" + secrets.token_hex(8)),
        ("AWS_SECRET_ACCESS_KEY", token(30)),
        ("CRM_SAFE_REDIRECT_HOSTS", host),
        ("CRM_BASE_URL", base_url),
    ]
    return "".join(line + "\n" if value is None else f"{line}={value}\n" for line, value in values)
