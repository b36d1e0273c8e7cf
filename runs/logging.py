"""A logging filter that keeps configured secrets out of every log line."""

from __future__ import annotations

import logging

from django.conf import settings

REDACTED = "[redacted]"
# Settings whose values must never be written anywhere (tokens, passwords, webhook URLs).
SECRET_SETTINGS = ("TENDEROPS_API_TOKEN", "EMAIL_HOST_PASSWORD", "SECRET_KEY")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [value for value in _secret_values() if len(value) >= 4]
        if not secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in secrets:
            message = message.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        record.msg, record.args = message, None
        return True


def _secret_values() -> list[str]:
    if not settings.configured:
        return []
    return [str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS]


class UnhandledErrorsOnly(logging.Filter):
    """For ``django.request``: the unhandled errors (with a traceback), not every 5xx answer
    (the health endpoint's 503 for a stale monitor is an answer, not an error of tenderops)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None
