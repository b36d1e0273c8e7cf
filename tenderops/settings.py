"""Django settings for tenderops, read from the environment (README, "Configuration";
docs/reference.md, "Settings")."""

from contextlib import suppress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from runs import limits
from runs.vocabulary import MonitorMode, StuckRule
from tenderops.env import (
    check_utf8_environment,
    env_base_url,
    env_bool,
    env_choice,
    env_cluster_name,
    env_database,
    env_hosts,
    env_int,
    env_kind_timeouts,
    env_optional_int,
    env_redis_url,
    env_str,
    env_text,
    env_time_of_day,
    env_time_zone,
    env_url,
)
from tenderops.env_mail import env_email, env_emails, env_smtp_credential, env_smtp_host
from tenderops.env_secrets import env_secret_key, env_signing_secret, env_token

check_utf8_environment()  # before any variable is read
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env_secret_key("DJANGO_SECRET_KEY", debug=DEBUG)
ALLOWED_HOSTS = env_hosts("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
if not ALLOWED_HOSTS and not DEBUG:  # "," : every request would be refused (400)
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS names no host: list the server's names")

# Behind TLS (see docs/operations.md, "Production"): secure cookies, HSTS, the proxy's header.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", default=False)
# Machines are refused over plain HTTP, not redirected: a redirected POST did nothing, and
# curl -f exits 0 on a 301 (runs.api.answered). Matched against the whole path, SCRIPT_NAME
# included (a proxy may mount the site under a prefix), so after any leading segments but
# never under admin/ (a run's id may hold "api/").
SECURE_REDIRECT_EXEMPT = [r"^((?!admin/)[^/]+/)*api/", r"^((?!admin/)[^/]+/)*metrics$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0, limits.HSTS_SECONDS)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
if env_bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "tenderops.admin_site.ConsoleAdminConfig",  # django.contrib.admin, tenderops' site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django_q: its qcluster command is runs' (which checks the broker first).
    "runs",
    "django_q",
]

MIDDLEWARE = [
    "runs.middleware.HeadWithoutBody",  # outermost: drops the body every other layer made
    "django.middleware.security.SecurityMiddleware",
    # Before anything queries: the admin's lock waits bounded, database errors a 503 page.
    "runs.database_trouble.DatabaseTrouble",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before any view: a request no view can read never reaches a query (runs/middleware.py).
    "runs.middleware.RejectUnreadableRequests",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tenderops.urls"
WSGI_APPLICATION = "tenderops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tenderops.sqlite3'}")}
if not env_str("DATABASE_URL").strip():
    if not DEBUG:
        # Production without its address would watch the embedded, empty database and find
        # nothing stuck, ever.
        raise ImproperlyConfigured(
            "DATABASE_URL must be set when DJANGO_DEBUG is off: without it tenderops would "
            "watch its embedded demo database, not the tender table (the demo: DJANGO_DEBUG=true)"
        )
    VAR_DIR.mkdir(exist_ok=True)  # a fresh clone's first `migrate` creates the embedded database
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # README's sqlite:///var/try.sqlite3 in a fresh clone: SQLite makes no directory. Any
    # other trouble is SQLite's to say ("unable to open database file"), in one line.
    if DEBUG:
        with suppress(OSError):
            Path(DATABASES["default"]["NAME"]).parent.mkdir(exist_ok=True)
    # Write transactions take SQLite's lock at BEGIN, so read-then-update stays consistent.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
DATABASES["default"]["TEST"] = {"NAME": env_str("TENDEROPS_TEST_DATABASE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "runs" / "locale"]
USE_I18N = True
# Times are shown, days counted and retention scheduled in this zone; stored times are UTC.
TIME_ZONE = env_time_zone("TENDEROPS_TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Error reports (the debug page) hide webhook addresses too, not only Django's usual names.
DEFAULT_EXCEPTION_REPORTER_FILTER = "runs.logging.HideSecretSettings"

# Everything to stderr, debug or not: tenderops' own messages, and every unhandled error of
# a request with its traceback (Django alone would mail it to ADMINS, which nobody reads).
# Configured secrets never reach a line (runs.logging.RedactSecrets).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "runs.logging.RedactSecrets"},
        "unhandled": {"()": "runs.logging.UnhandledErrorsOnly"},
        "one_line": {"()": "runs.logging.OneLine"},
        "message_on_one_line": {"()": "runs.logging.MessageOnOneLine"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["message_on_one_line", "redact"],
        },
        "console_one_line": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["one_line", "message_on_one_line", "redact"],
        },
    },
    "loggers": {
        "runs": {"handlers": ["console"], "level": "INFO"},
        "django.request": {
            "handlers": ["console"],
            "level": "ERROR",
            "filters": ["unhandled"],
            "propagate": False,
        },
        "django.server": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # A request from a Host not in DJANGO_ALLOWED_HOSTS, said where the operator looks
        # (Django's own handlers say it only in debug mode).
        "django.security": {
            "handlers": ["console_one_line"],
            "level": "WARNING",
            "propagate": False,
        },
    },
}

# --- tenderops ---------------------------------------------------------------
TENDEROPS_STUCK_TIMEOUT_MINUTES = env_int(
    "TENDEROPS_STUCK_TIMEOUT_MINUTES", 10, limits.TIMEOUT_MINUTES
)
TENDEROPS_STUCK_TIMEOUTS = env_kind_timeouts("TENDEROPS_STUCK_TIMEOUTS", limits.TIMEOUT_MINUTES)
# Signs of life (docs/operations.md): judge running runs by their silence, or by their age.
TENDEROPS_STUCK_RULE = env_choice("TENDEROPS_STUCK_RULE", StuckRule.SILENCE, StuckRule.values)
TENDEROPS_MAX_RUN_MINUTES = env_int("TENDEROPS_MAX_RUN_MINUTES", 240, limits.TIMEOUT_MINUTES)
TENDEROPS_MONITOR_MODE = env_choice("TENDEROPS_MONITOR_MODE", MonitorMode.FAIL, MonitorMode.values)
# Pending runs silent longer than this are "waiting": shown, counted and alerted.
TENDEROPS_PENDING_ALERT_MINUTES = env_int(
    "TENDEROPS_PENDING_ALERT_MINUTES", 30, limits.TIMEOUT_MINUTES
)
TENDEROPS_FAIL_PENDING_AFTER_MINUTES = env_optional_int(
    "TENDEROPS_FAIL_PENDING_AFTER_MINUTES", limits.TIMEOUT_MINUTES
)
TENDEROPS_STUCK_ERROR = env_text("TENDEROPS_STUCK_ERROR", "任务超时未完成")
TENDEROPS_STUCK_MESSAGE = env_text("TENDEROPS_STUCK_MESSAGE", "任务异常终止：超时未完成")
# What "mark failed" by an operator writes: not a timeout, which the run may never have had.
TENDEROPS_MARK_FAILED_ERROR = env_text("TENDEROPS_MARK_FAILED_ERROR", "运维人员手动标记为失败")
TENDEROPS_MARK_FAILED_MESSAGE = env_text("TENDEROPS_MARK_FAILED_MESSAGE", "任务已被运维人员终止")
TENDEROPS_RETENTION_FAILED_DAYS = env_int(
    "TENDEROPS_RETENTION_FAILED_DAYS", 30, limits.RETENTION_DAYS
)
TENDEROPS_RETENTION_SUCCESS_DAYS = env_int(
    "TENDEROPS_RETENTION_SUCCESS_DAYS", 90, limits.RETENTION_DAYS
)
# tenderops' own audit and alerts older than this are deleted by the daily retention.
TENDEROPS_RETENTION_HISTORY_DAYS = env_int(
    "TENDEROPS_RETENTION_HISTORY_DAYS", 365, limits.HISTORY_RETENTION_DAYS
)
TENDEROPS_PRUNE_BATCH_SIZE = env_int("TENDEROPS_PRUNE_BATCH_SIZE", 100_000, limits.PRUNE_BATCH_SIZE)
TENDEROPS_STATS_MAX_AGE_SECONDS = env_int(
    "TENDEROPS_STATS_MAX_AGE_SECONDS", 300, limits.STATS_MAX_AGE_SECONDS
)
TENDEROPS_MONITOR_INTERVAL_MINUTES = env_int(
    "TENDEROPS_MONITOR_INTERVAL_MINUTES", 1, limits.MONITOR_INTERVAL_MINUTES
)
TENDEROPS_API_TOKEN = env_token("TENDEROPS_API_TOKEN", example_allowed=DEBUG)
# Daily retention at this time of day in TIME_ZONE; "off": no retention schedule.
TENDEROPS_RETENTION_TIME = env_time_of_day("TENDEROPS_RETENTION_TIME", "03:00")

# --- alerts and metrics (docs/operations.md, "Alerts and metrics") -----------
# Every channel is optional; any number may be configured together. Webhook addresses carry
# their keys: they are secrets (runs/logging.py), shown masked and never logged.
TENDEROPS_ALERT_EMAILS = env_emails("TENDEROPS_ALERT_EMAILS", limits.MAX_ALERT_EMAILS)
TENDEROPS_ALERT_WEBHOOK_URL = env_url("TENDEROPS_ALERT_WEBHOOK_URL", limits.MAX_URL_LENGTH)
TENDEROPS_WECOM_WEBHOOK_URL = env_url("TENDEROPS_WECOM_WEBHOOK_URL", limits.MAX_URL_LENGTH)
TENDEROPS_DINGTALK_WEBHOOK_URL = env_url("TENDEROPS_DINGTALK_WEBHOOK_URL", limits.MAX_URL_LENGTH)
TENDEROPS_DINGTALK_SECRET = env_signing_secret("TENDEROPS_DINGTALK_SECRET", limits.MAX_TOKEN_LENGTH)
TENDEROPS_FEISHU_WEBHOOK_URL = env_url("TENDEROPS_FEISHU_WEBHOOK_URL", limits.MAX_URL_LENGTH)
TENDEROPS_FEISHU_SECRET = env_signing_secret("TENDEROPS_FEISHU_SECRET", limits.MAX_TOKEN_LENGTH)
TENDEROPS_ALERT_LANGUAGE = env_choice("TENDEROPS_ALERT_LANGUAGE", "zh-hans", ("zh-hans", "en"))
TENDEROPS_ALERT_COOLDOWN_MINUTES = env_int(
    "TENDEROPS_ALERT_COOLDOWN_MINUTES", 30, limits.ALERT_COOLDOWN_MINUTES
)
TENDEROPS_ALERT_TIMEOUT_SECONDS = env_int(
    "TENDEROPS_ALERT_TIMEOUT_SECONDS", 10, limits.ALERT_TIMEOUT_SECONDS
)
TENDEROPS_ALERT_MAX_ATTEMPTS = env_int("TENDEROPS_ALERT_MAX_ATTEMPTS", 5, limits.ALERT_MAX_ATTEMPTS)
TENDEROPS_ALERT_RETRY_SECONDS = env_int(
    "TENDEROPS_ALERT_RETRY_SECONDS", 60, limits.ALERT_RETRY_SECONDS
)
TENDEROPS_SPIKE_MIN_FAILURES = env_int("TENDEROPS_SPIKE_MIN_FAILURES", 5, limits.SPIKE_MIN_FAILURES)
# Where operators open tenderops: alerts link to the admin under it (no link while unset).
TENDEROPS_PUBLIC_URL = env_base_url("TENDEROPS_PUBLIC_URL", limits.MAX_URL_LENGTH)
# Read-only bearer token: opens /metrics and the health endpoint, nothing that changes data.
TENDEROPS_METRICS_TOKEN = env_token(
    "TENDEROPS_METRICS_TOKEN", ("TENDEROPS_API_TOKEN", TENDEROPS_API_TOKEN), example_allowed=DEBUG
)

# Alert mail: SMTP to the server the EMAIL_* variables name, within a deadline for the whole
# exchange (runs/alerting/mail.py). Options of tenderops' own, not Django's EMAIL_* settings:
# Django 6.1 deprecates those for MAILERS, and its test runner turns every mailer into the
# in-memory one, where the suite's alerts must reach a real SMTP server.
TENDEROPS_ALERT_EMAIL_BACKEND = "runs.alerting.mail.DeadlineEmailBackend"
TENDEROPS_ALERT_SMTP = {
    "host": env_smtp_host("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25, limits.SMTP_PORT),
    "username": env_smtp_credential("EMAIL_HOST_USER"),
    "password": env_smtp_credential("EMAIL_HOST_PASSWORD"),
    "use_tls": env_bool("EMAIL_USE_TLS", default=False),
    "use_ssl": env_bool("EMAIL_USE_SSL", default=False),
}
if TENDEROPS_ALERT_SMTP["use_tls"] and TENDEROPS_ALERT_SMTP["use_ssl"]:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
DEFAULT_FROM_EMAIL = env_email("DEFAULT_FROM_EMAIL", "tenderops@localhost")

# --- django-q2 ----------------------------------------------------------------
# A monitor tick takes milliseconds and retention is batched; ``timeout`` bounds any task and
# ``retry`` is well above it, so a task is never handed out again while it still runs.
TENDEROPS_TASK_TIMEOUT_SECONDS = env_int(
    "TENDEROPS_TASK_TIMEOUT_SECONDS", 1800, limits.TASK_TIMEOUT_SECONDS
)
REDIS_URL = env_redis_url("REDIS_URL")
Q_CLUSTER = {
    "name": env_cluster_name("TENDEROPS_CLUSTER_NAME", "tenderops"),
    "workers": env_int("TENDEROPS_Q_WORKERS", 2, limits.CLUSTER_WORKERS),
    "timeout": TENDEROPS_TASK_TIMEOUT_SECONDS,
    "retry": TENDEROPS_TASK_TIMEOUT_SECONDS + 600,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "label": "Django Q2",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
