"""Keeping configured secrets out of every log line, page and stored answer.

A webhook address is a secret as a whole and in its parts: the key in its query
(``access_token=``, ``key=``) or in its last path segment (Feishu's hook id) is redacted
wherever it appears on its own too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlsplit

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

REDACTED = "[redacted]"
# Settings whose values must never be written anywhere (tokens, passwords, webhook URLs); the
# SMTP password (EMAIL_HOST_PASSWORD) is TENDEROPS_ALERT_SMTP's.
SECRET_SETTINGS = (
    "TENDEROPS_API_TOKEN",
    "TENDEROPS_METRICS_TOKEN",
    "SECRET_KEY",
    "TENDEROPS_ALERT_WEBHOOK_URL",
    "TENDEROPS_WECOM_WEBHOOK_URL",
    "TENDEROPS_DINGTALK_WEBHOOK_URL",
    "TENDEROPS_DINGTALK_SECRET",
    "TENDEROPS_FEISHU_WEBHOOK_URL",
    "TENDEROPS_FEISHU_SECRET",
)
# Shorter fragments are too common to redact (and too short to be a key).
MIN_SECRET_LENGTH = 4
# An address's last path segment is taken for a key (Feishu's hook id) when it looks like
# one: from MIN_URL_KEY_LENGTH characters with a digit, or from WORDLESS_KEY_LENGTH without.
# Else it is a word of the path: a webhook at ``/hook`` redacted "web[redacted]" out of
# every "webhook" logged, one at ``/tenderops`` the name from every line. The robots' keys
# are 32 characters and more. A query's values are keys whatever their length (down to
# MIN_SECRET_LENGTH).
MIN_URL_KEY_LENGTH = 8
WORDLESS_KEY_LENGTH = 24


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        if not secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message, secrets), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every configured secret (and every part of a webhook's key) replaced."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    return text


def secret_values() -> list[str]:
    """The secrets to redact, longest first (a whole address before its key)."""
    if not settings.configured:
        return []
    values: set[str] = set()
    smtp_password = getattr(settings, "TENDEROPS_ALERT_SMTP", {}).get("password")
    for value in [*(getattr(settings, name, "") for name in SECRET_SETTINGS), smtp_password]:
        value = str(value or "")
        values.add(value)
        if value.startswith(("http://", "https://")):
            values.update(url_secrets(value))
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def url_secrets(url: str) -> list[str]:
    """The parts of a webhook address that are keys: query values and the last path segment,
    each as written, decoded and encoded again (an answer may echo any of them: a key written
    ``DING%2Bplus`` came back as it was written and was not redacted)."""
    parts = urlsplit(url)
    written = [pair.partition("=")[2] for pair in parts.query.split("&")]
    last_segment = parts.path.rstrip("/").rpartition("/")[2]
    if parts.query == "" and _looks_like_a_key(last_segment):
        written.append(last_segment)
    keys = set()
    for key in written:
        plain = unquote_plus(key)
        keys.update((key, plain, quote(plain, safe=""), quote_plus(plain, safe="")))
    return sorted((key for key in keys if key), key=len, reverse=True)


def _looks_like_a_key(segment: str) -> bool:
    if len(segment) >= WORDLESS_KEY_LENGTH:
        return True
    return len(segment) >= MIN_URL_KEY_LENGTH and any(c.isdigit() for c in segment)


def mask_url(url: str) -> str:
    """A webhook address to show: scheme, host and path, every key cut to its last four
    characters (``https://oapi.dingtalk.com/robot/send?access_token=…3f9a``)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path
    query = "&".join(
        f"{name}=…{value[-4:]}" for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if not query:
        head, _slash, last = path.rstrip("/").rpartition("/")
        path = f"{head}/…{last[-4:]}" if last else path
    return f"{parts.scheme}://{host}{path}" + (f"?{query}" if query else "")


class HideSecretSettings(SafeExceptionReporterFilter):
    """Django's error reports (debug pages, mails) hide settings named like secrets; webhook
    addresses carry keys in names that do not say so."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|WEBHOOK|DATABASE_URL", flags=re.I
    )


class UnhandledErrorsOnly(logging.Filter):
    """For ``django.request``: the unhandled errors (with a traceback), not every 5xx answer
    (the health endpoint's 503 for a stale monitor is an answer, not an error of tenderops)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None


class OneLine(logging.Filter):
    """For ``django.security``: what was refused, without the traceback of the exception that
    refused it (each scanner's request wrote fifteen lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        return True
