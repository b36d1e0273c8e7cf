"""Keeping configured secrets out of every log line, page and stored answer.

A webhook address is a secret as a whole and in its parts: a key in its query
(``access_token=``, ``key=``, a bare ``?<key>``) or in any path segment (Feishu's hook id,
Discord's ``/webhooks/<id>/<token>``, Bark's ``/<key>/send``) is redacted wherever it
appears on its own too, and masked where the address is shown.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

from runs.shown_text import visible

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
# A path segment is taken for a key when it looks like one: from MIN_URL_KEY_LENGTH
# characters with a digit, or from WORDLESS_KEY_LENGTH without; a query value or bare query
# part (``?<key>``) from MIN_URL_KEY_LENGTH characters whatever they are. Else it is a
# word: a webhook at ``/hook`` redacted "web[redacted]" out of every "webhook" logged, one
# at ``/tenderops`` the name from every line, one with ``?format=json``
# "application/[redacted]". The robots' keys are 32 characters and more. A query value
# whose name says it is a key (``token=``, ``key=``) is one whatever its length (down to
# MIN_SECRET_LENGTH).
MIN_URL_KEY_LENGTH = 8
WORDLESS_KEY_LENGTH = 24
# Letters of both cases from this length: a random key, not a word of an address.
MIXED_CASE_KEY_LENGTH = 16
KEY_NAME = re.compile(r"key|token|secret|sig|auth|pass|pwd|cred|session|ticket", flags=re.I)


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
    """The parts of a webhook address that are keys (``_is_key``), each as written, decoded
    and encoded again (an answer may echo any of them: a key written ``DING%2Bplus`` came
    back as it was written and was not redacted)."""
    parts = urlsplit(url)
    written = [segment for segment in parts.path.split("/") if _looks_like_a_key(segment)]
    for part in parts.query.split("&"):
        name, value = _query_part(part)
        if _is_key(name, value):
            written.append(value)
    keys = set()
    for key in written:
        plain = unquote_plus(key)
        keys.update((key, plain, quote(plain, safe=""), quote_plus(plain, safe="")))
    return sorted((key for key in keys if key), key=len, reverse=True)


def _query_part(part: str) -> tuple[str, str]:
    """A query part's name and value as written; a bare part (``?<key>``) is a value."""
    name, equals, value = part.partition("=")
    return (name, value) if equals else ("", part)


def _is_key(name: str, value: str) -> bool:
    # A query value is there to be read by the receiver: from MIN_URL_KEY_LENGTH characters
    # it is taken for a key even without a digit (?u=somepassword), words such as json or
    # true are shorter.
    return bool(KEY_NAME.search(name)) or len(unquote_plus(value)) >= MIN_URL_KEY_LENGTH


def _looks_like_a_key(segment: str) -> bool:
    if len(segment) >= WORDLESS_KEY_LENGTH:
        return True
    if len(segment) >= MIXED_CASE_KEY_LENGTH and _mixed_case(segment):
        return True  # a Bark key of 22 letters that happened to draw no digit
    return len(segment) >= MIN_URL_KEY_LENGTH and any(c.isdigit() for c in segment)


def _mixed_case(segment: str) -> bool:
    return segment.isalnum() and not segment.islower() and not segment.isupper()


def mask_url(url: str) -> str:
    """A webhook address to show: scheme, host, path and query, every key cut to its last
    four characters (``https://oapi.dingtalk.com/robot/send?access_token=…3f9a``): each
    query value (bare parts too), each path segment that looks like a key, and without a
    query the last segment whatever it looks like."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = parts.path.split("/")
    last = max((i for i, segment in enumerate(segments) if segment), default=-1)
    path = "/".join(
        _cut(segment) if _looks_like_a_key(segment) or (i == last and not parts.query) else segment
        for i, segment in enumerate(segments)
    )
    query = "&".join(_masked_query_part(part) for part in parts.query.split("&") if part)
    return f"{parts.scheme}://{host}{path}" + (f"?{query}" if query else "")


def _masked_query_part(part: str) -> str:
    name, value = _query_part(part)
    return f"{name}={_cut(value)}" if name else _cut(value)


def _cut(key: str) -> str:
    return f"…{unquote_plus(key)[-4:]}"


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


class MessageOnOneLine(logging.Filter):
    """A message is one line, its controls written out (``<U+001B>``): Django's messages
    quote what a request sent (``?_to_field=x%0A2026-… ERROR …%1b[2J`` wrote a forged line
    and a terminal escape into the journal). A traceback keeps its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = visible(record.getMessage(), one_line=True), None
        return True


class OneLine(logging.Filter):
    """For ``django.security``: what was refused, without the traceback of the exception that
    refused it (each scanner's request wrote fifteen lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        return True
