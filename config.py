"""FinCRM settings: one place, environment overrides, safe defaults for the embedded mode.

Every setting is read from the environment with a default that runs the app on SQLite with no
Redis. Production (``FLASK_ENV=production`` or ``CRM_ENV=production``) refuses the default key.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CRM_INSTANCE_DIR", BASE_DIR / "instance"))

DEFAULT_SECRET_KEY = "fincrm-development-key-change-me-0123456789abcdef"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def database_url(raw: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` forms; the driver is psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    return raw


class Config:
    """Defaults for every environment; subclasses change only what differs."""

    CRM_ENV = os.environ.get("CRM_ENV", os.environ.get("FLASK_ENV", "development"))
    SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)

    # Database: SQLite under instance/ unless DATABASE_URL says otherwise.
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'fincrm.db'}")
    )
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # A read replica of that database (same engine): dashboard figures, report builds and
    # export rows read it; everything else reads and writes the primary (app/core/replica.py).
    CRM_READ_REPLICA_URL = os.environ.get("CRM_READ_REPLICA_URL") or None

    # Queue: no REDIS_URL means jobs run inline in the process that enqueues them.
    REDIS_URL = os.environ.get("REDIS_URL") or None
    RQ_QUEUES = ["notifications", "reports", "default"]

    # Flask-AppBuilder
    APP_NAME = "FinCRM"
    APP_THEME = ""
    FAB_CREATE_DB = False  # Alembic owns the schema.
    FAB_UPDATE_PERMS = False  # `flask crm init` syncs permissions, once.
    FAB_ADD_SECURITY_API = True
    FAB_API_SWAGGER_UI = True
    # The OpenAPI and Swagger views are FinCRM's own (app/core/openapi.py), registered in app/views.py.
    FAB_ADD_OPENAPI_VIEWS = False
    FAB_API_MAX_PAGE_SIZE = 100
    # API keys for other systems (`flask crm api-key create --user NAME`, or /api/v1/apikey/);
    # sent as `Authorization: Bearer fincrm_...`, each acting as its user.
    FAB_API_KEY_ENABLED = _env_bool("CRM_API_KEYS_ENABLED", True)
    FAB_API_KEY_PREFIXES = ["fincrm_"]
    FAB_SAFE_REDIRECT_HOSTS = _env_list("CRM_SAFE_REDIRECT_HOSTS", "localhost,127.0.0.1")
    # Host names the app answers to (Flask refuses others with 400, so a spoofed Host header
    # never reaches a page or a link); unset answers any host, e.g. behind a proxy that checks.
    TRUSTED_HOSTS = _env_list("CRM_TRUSTED_HOSTS") or None
    AUTH_TYPE = 1  # AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False
    FAB_PASSWORD_COMPLEXITY_ENABLED = True
    # FAB's own rule (2 capitals, 2 digits, 3 lower-case, a symbol, 10+ characters): FAB calls
    # this setting directly, so it must be a function or None, never a dotted name.
    FAB_PASSWORD_COMPLEXITY_VALIDATOR = None

    # Login throttling (FAB's form login and, through app.security, the API login).
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
    # One sign-in throttle for the form and the API (app.security.throttle); FAB's own limits
    # only the form, so it stays off.
    AUTH_RATE_LIMITED = False
    CRM_LOGIN_THROTTLED = True
    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "10 per minute")
    CRM_LOGIN_USERNAME_LIMIT = os.environ.get("CRM_LOGIN_USERNAME_LIMIT", "10 per minute")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True

    # Forms and sessions
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = 3600 * 8
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    # A session idle this long, or signed in this long ago, ends (app.security.sessions).
    CRM_SESSION_IDLE_SECONDS = int(os.environ.get("CRM_SESSION_IDLE_SECONDS", 3600))
    CRM_SESSION_MAX_SECONDS = int(os.environ.get("CRM_SESSION_MAX_SECONDS", 10 * 3600))
    MAX_CONTENT_LENGTH = int(os.environ.get("CRM_MAX_CONTENT_LENGTH", 25 * 1024 * 1024))

    # Business defaults
    CRM_DEFAULT_PHONE_REGION = os.environ.get("CRM_DEFAULT_PHONE_REGION", "IN")
    CRM_DEFAULT_TIMEZONE = os.environ.get("CRM_DEFAULT_TIMEZONE", "Asia/Kolkata")

    # Storage (documents, exports)
    STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "local")
    STORAGE_LOCAL_ROOT = os.environ.get("STORAGE_LOCAL_ROOT", str(INSTANCE_DIR / "files"))
    S3_BUCKET = os.environ.get("S3_BUCKET", "fincrm")
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
    # Where browsers reach the same S3 service when the app reaches it by an internal name
    # (compose's http://s3:9000): download links are signed for this address.
    S3_PUBLIC_ENDPOINT_URL = os.environ.get("S3_PUBLIC_ENDPOINT_URL") or None
    S3_REGION = os.environ.get("S3_REGION", "us-east-1")
    CRM_MAX_UPLOAD_BYTES = int(os.environ.get("CRM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))
    # Largest lead import file (CSV or XLSX); below MAX_CONTENT_LENGTH so the message is ours.
    CRM_MAX_IMPORT_BYTES = int(os.environ.get("CRM_MAX_IMPORT_BYTES", 20 * 1024 * 1024))
    CRM_DOWNLOAD_URL_SECONDS = int(os.environ.get("CRM_DOWNLOAD_URL_SECONDS", 300))
    # Exports: up to this many rows download at once, more run as a background job whose file
    # is kept this many hours (report e-mails' files too, counted from sending).
    CRM_EXPORT_INLINE_ROWS = int(os.environ.get("CRM_EXPORT_INLINE_ROWS", 1000))
    CRM_EXPORT_TTL_HOURS = float(os.environ.get("CRM_EXPORT_TTL_HOURS", 24))

    # FAB's own file columns are unused (documents go through the storage backend); its
    # download route still needs a folder, kept empty.
    UPLOAD_FOLDER = str(INSTANCE_DIR / "fab-uploads") + "/"

    # Mail
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "localhost")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "fincrm@localhost")
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    CRM_BASE_URL = os.environ.get("CRM_BASE_URL", "http://127.0.0.1:8080")

    # SMS: "logging" (default) writes messages to the log; "http" posts to SMS_GATEWAY_URL.
    SMS_GATEWAY = os.environ.get("SMS_GATEWAY", "logging")
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL") or None
    SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN") or None

    # Outbox dispatch
    CRM_OUTBOX_LEASE_SECONDS = int(os.environ.get("CRM_OUTBOX_LEASE_SECONDS", 300))
    CRM_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("CRM_OUTBOX_MAX_ATTEMPTS", 5))
    CRM_DISPATCH_THROTTLE_SECONDS = float(os.environ.get("CRM_DISPATCH_THROTTLE_SECONDS", 0))
    # Embedded mode (no REDIS_URL): `python run.py` runs periodic jobs in a background thread.
    CRM_INPROCESS_SCHEDULER = _env_bool("CRM_INPROCESS_SCHEDULER", True)
    # Lead score weights (see app/leads/scoring.py DEFAULT_WEIGHTS); a JSON object overrides parts.
    CRM_LEAD_SCORE_WEIGHTS = json.loads(os.environ.get("CRM_LEAD_SCORE_WEIGHTS", "{}"))
    # Risk questionnaire: highest score of each profile (see app/clients/risk.py DEFAULT_LIMITS).
    CRM_RISK_PROFILE_LIMITS = json.loads(os.environ.get("CRM_RISK_PROFILE_LIMITS", "{}"))
    # Lending (DOMAIN section 6): the ledger's currency and the reminder times, in days.
    CRM_BASE_CURRENCY = os.environ.get("CRM_BASE_CURRENCY", "INR")
    CRM_LOAN_DUE_REMINDER_DAYS = int(os.environ.get("CRM_LOAN_DUE_REMINDER_DAYS", 3))
    """A reminder to the borrowers and the BDM this many days before each due date."""
    CRM_LOAN_LATE_BORROWER_DAYS = tuple(
        int(d) for d in _env_list("CRM_LOAN_LATE_BORROWER_DAYS", "3,7")
    )
    CRM_LOAN_LATE_BDM_DAYS = tuple(int(d) for d in _env_list("CRM_LOAN_LATE_BDM_DAYS", "10"))
    CRM_LOAN_STALE_STAGE_DAYS = int(os.environ.get("CRM_LOAN_STALE_STAGE_DAYS", 14))
    """The BDM hears about an application whose stage has not changed for this many days."""
    # Offers (DOMAIN section 8): the festival/holiday calendar an offer's occasion is chosen from
    # (name -> ISO date), and how many clients one offer reaches per run of the daily job.
    CRM_FESTIVALS = json.loads(os.environ.get("CRM_FESTIVALS", "null")) or {
        "Diwali 2026": "2026-11-08",
        "Christmas 2026": "2026-12-25",
        "New Year 2027": "2027-01-01",
        "Pongal 2027": "2027-01-14",
        "Holi 2027": "2027-03-22",
        "Eid al-Fitr 2027": "2027-03-10",
        "Diwali 2027": "2027-10-29",
    }
    CRM_OFFER_BATCH = int(os.environ.get("CRM_OFFER_BATCH", 1000))
    # Marketing campaigns: people per send batch (one transaction each); unsubscribe links' life.
    CRM_CAMPAIGN_BATCH = int(os.environ.get("CRM_CAMPAIGN_BATCH", 500))
    CRM_UNSUBSCRIBE_MAX_AGE_DAYS = int(os.environ.get("CRM_UNSUBSCRIBE_MAX_AGE_DAYS", 365))
    # Billing desk: the name and address printed on invoice and quotation PDFs, the payment
    # terms of a new invoice, and the days before a contract's renewal date its reminders go.
    CRM_COMPANY_NAME = os.environ.get("CRM_COMPANY_NAME", "FinCRM Financial Services")
    CRM_COMPANY_ADDRESS = os.environ.get("CRM_COMPANY_ADDRESS", "")
    CRM_INVOICE_PAYMENT_DAYS = int(os.environ.get("CRM_INVOICE_PAYMENT_DAYS", 30))
    CRM_CONTRACT_RENEWAL_DAYS = tuple(
        int(d) for d in _env_list("CRM_CONTRACT_RENEWAL_DAYS", "60,30")
    )
    # Brokerage (DOMAIN section 5): where instrument prices come from ("csv" or "http").
    CRM_PRICE_FEED = os.environ.get("CRM_PRICE_FEED", "csv")
    CRM_PRICE_FEED_FILE = os.environ.get("CRM_PRICE_FEED_FILE", "")
    CRM_PRICE_FEED_URL = os.environ.get("CRM_PRICE_FEED_URL", "")
    CRM_PRICE_FEED_TIMEOUT = float(os.environ.get("CRM_PRICE_FEED_TIMEOUT", 10))
    # Prices and FX rates a provider pushes (docs/markets.md): the webhook signing secret
    # (without it every delivery is refused), how far a signed timestamp may be from now, the
    # requests allowed per address; and the age after which a price flags a valuation as stale.
    CRM_PRICE_WEBHOOK_SECRET = os.environ.get("CRM_PRICE_WEBHOOK_SECRET", "")
    CRM_PRICE_WEBHOOK_TOLERANCE_SECONDS = int(
        os.environ.get("CRM_PRICE_WEBHOOK_TOLERANCE_SECONDS", 300)
    )
    CRM_PRICE_WEBHOOK_RATE_LIMIT = os.environ.get("CRM_PRICE_WEBHOOK_RATE_LIMIT", "600 per minute")
    CRM_PRICE_STALE_MINUTES = int(os.environ.get("CRM_PRICE_STALE_MINUTES", 3 * 24 * 60))

    # Forex desk and loyalty (DOMAIN section 8): the desk's spread in basis points, how long a
    # quote holds, the rate feed (a CSV file, or a provider URL answering JSON or CSV), and the
    # points rule (points per whole unit of base-currency value sold).
    CRM_FX_SPREAD_BPS = int(os.environ.get("CRM_FX_SPREAD_BPS", 50))
    CRM_FX_QUOTE_SECONDS = int(os.environ.get("CRM_FX_QUOTE_SECONDS", 60))
    CRM_FX_RATES_FILE = os.environ.get("CRM_FX_RATES_FILE", str(INSTANCE_DIR / "fx_rates.csv"))
    CRM_FX_RATES_URL = os.environ.get("CRM_FX_RATES_URL") or None
    CRM_LOYALTY_POINTS_PER_UNIT = int(os.environ.get("CRM_LOYALTY_POINTS_PER_UNIT", 1))
    CRM_LOYALTY_UNIT_AMOUNT = os.environ.get("CRM_LOYALTY_UNIT_AMOUNT", "100.00")
    CRM_TASK_REMINDER_MINUTES = int(os.environ.get("CRM_TASK_REMINDER_MINUTES", 60))
    # Payment links and webhooks (docs/payments.md): the provider ("test", FinCRM's local
    # gateway, or "stripe"), its API secret, the webhook signing secret, its API's base URL,
    # and how far a webhook's signed timestamp may be from now before it is refused as stale.
    CRM_PAYMENT_PROVIDER = os.environ.get("CRM_PAYMENT_PROVIDER", "test")
    CRM_PAYMENT_SECRET_KEY = os.environ.get("CRM_PAYMENT_SECRET_KEY", "")
    CRM_PAYMENT_WEBHOOK_SECRET = os.environ.get("CRM_PAYMENT_WEBHOOK_SECRET", "")
    CRM_PAYMENT_BASE_URL = os.environ.get("CRM_PAYMENT_BASE_URL", "http://127.0.0.1:8765")
    CRM_PAYMENT_TOLERANCE_SECONDS = int(os.environ.get("CRM_PAYMENT_TOLERANCE_SECONDS", 300))
    CRM_PAYMENT_TIMEOUT = float(os.environ.get("CRM_PAYMENT_TIMEOUT", 10))
    CRM_PAYMENT_WEBHOOK_RATE_LIMIT = os.environ.get(
        "CRM_PAYMENT_WEBHOOK_RATE_LIMIT", "120 per minute"
    )
    # Support cases (docs/work.md): hours to resolve by priority (the SLA), the address clients
    # write to (an e-mail fed to `flask crm support-ingest` must be addressed to it), and the
    # largest e-mail and chat transcript accepted.
    CRM_SUPPORT_SLA_HOURS = {
        "urgent": int(os.environ.get("CRM_SUPPORT_SLA_URGENT_HOURS", 4)),
        "high": int(os.environ.get("CRM_SUPPORT_SLA_HIGH_HOURS", 8)),
        "normal": int(os.environ.get("CRM_SUPPORT_SLA_NORMAL_HOURS", 24)),
        "low": int(os.environ.get("CRM_SUPPORT_SLA_LOW_HOURS", 72)),
    }
    SUPPORT_INBOUND_ADDRESS = os.environ.get("SUPPORT_INBOUND_ADDRESS", "support@fincrm.example")
    CRM_SUPPORT_MAX_EMAIL_BYTES = int(os.environ.get("CRM_SUPPORT_MAX_EMAIL_BYTES", 2_000_000))
    CRM_SUPPORT_MAX_TRANSCRIPT_BYTES = int(
        os.environ.get("CRM_SUPPORT_MAX_TRANSCRIPT_BYTES", 500_000)
    )
    # Retention: lost leads untouched this long are anonymised by the nightly job.
    CRM_RETENTION_LOST_LEAD_DAYS = int(os.environ.get("CRM_RETENTION_LOST_LEAD_DAYS", 7 * 365))

    # Encryption keys for PII columns (comma-separated Fernet keys, newest first; all decrypt).
    # Outside production a key derived from SECRET_KEY is used when none is set.
    CRM_ENCRYPTION_KEYS = _env_list("CRM_ENCRYPTION_KEYS")
    # Key of the look-up hashes beside encrypted identifiers; never rotated with the above.
    CRM_LOOKUP_HASH_KEY = os.environ.get("CRM_LOOKUP_HASH_KEY") or None

    # Backups (docs/backup.md): the archive key (urlsafe base64 of 32 bytes; outside production
    # one derived from SECRET_KEY), where the nightly job writes (a folder or s3://bucket/prefix;
    # unset: no nightly backup) and how many days its archives are kept (the newest always is).
    CRM_BACKUP_KEY = os.environ.get("CRM_BACKUP_KEY") or None
    CRM_BACKUP_DIR = os.environ.get("CRM_BACKUP_DIR") or None
    CRM_BACKUP_KEEP_DAYS = int(os.environ.get("CRM_BACKUP_KEEP_DAYS", 14))

    @property
    def is_production(self) -> bool:
        return self.CRM_ENV == "production"


class ProductionConfig(Config):
    CRM_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


class TestConfig(Config):
    CRM_ENV = "test"
    TESTING = True
    SECRET_KEY = "fincrm-test-key-0123456789abcdef0123456789abcdef"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    REDIS_URL = None
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("TEST_DATABASE_URL", "sqlite://"))


def config_for_environment() -> type[Config]:
    env = os.environ.get("CRM_ENV", os.environ.get("FLASK_ENV", "development"))
    return ProductionConfig if env == "production" else Config
