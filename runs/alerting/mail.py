"""Django's SMTP mail within a deadline for the whole exchange, as the robots' POST.

A socket timeout bounds each read, not the exchange: a server that answered each line just
within it kept one attempt going for minutes, past its delivery's lease, so another sender
took the delivery back and mailed the alert again, and both cluster workers were busy
mailing while the monitor went stale. The deadline shuts the connection's socket, which
ends any read or write in progress (and the one STARTTLS puts in its place).

The connection is built from ``TENDEROPS_ALERT_SMTP`` as Django 6.1's mailers build theirs:
with an alias, it uses the options it is given and reads no ``EMAIL_*`` setting (which 6.1
deprecates); Django 5.2's backends ignore the alias.
"""

from __future__ import annotations

import smtplib
import socket

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.utils.module_loading import import_string

from runs.alerting.http import Deadline

ALERT_MAILER = "tenderops_alerts"


def alert_connection(timeout: float, deadline: Deadline) -> EmailBackend:
    """A connection to the alert mail's SMTP server, each read within ``timeout`` and the whole
    exchange within ``deadline``."""
    backend = import_string(settings.TENDEROPS_ALERT_EMAIL_BACKEND)
    options = settings.TENDEROPS_ALERT_SMTP
    return backend(alias=ALERT_MAILER, timeout=timeout, deadline=deadline, **options)


def smtp_server() -> str:
    """The alert mail's server as its answers name it: ``host:port``."""
    return f"{settings.TENDEROPS_ALERT_SMTP['host']}:{settings.TENDEROPS_ALERT_SMTP['port']}"


class DeadlineEmailBackend(EmailBackend):
    """Django's SMTP backend whose connections ``deadline`` watches (none: as Django's)."""

    def __init__(self, *args, deadline: Deadline | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        base = super().connection_class
        deadline = self.deadline
        if deadline is None:
            return base

        class Watched(base):
            def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
                sock = super()._get_socket(host, port, timeout)
                deadline.watch(sock)
                return sock

            def starttls(self, *args, **kwargs):
                answer = super().starttls(*args, **kwargs)
                deadline.watch(self.sock)
                return answer

        return Watched
