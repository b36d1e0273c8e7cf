"""Django's SMTP mail within a deadline for the whole exchange, as the robots' POST.

A socket timeout bounds each read, not the exchange: a server that answered each line just
within it kept one attempt going for minutes, past its delivery's lease, so another sender
took the delivery back and mailed the alert again, and both cluster workers were busy
mailing while the monitor went stale. The deadline shuts the connection's socket, which
ends any read or write in progress (and the one STARTTLS puts in its place).

The connection is built from ``TENDEROPS_ALERT_SMTP`` as Django 6.1's mailers build theirs:
with an alias, it uses the options it is given and reads no ``EMAIL_*`` setting (which 6.1
deprecates); Django 5.2's backends ignore the alias.

Django's backend drops what smtplib's ``sendmail`` returns: the recipients the server refused
while it accepted others. A mail half refused was recorded "accepted for 2 recipient(s)";
the connection here keeps them (``refused_recipients``).
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.utils.module_loading import import_string

from runs.alerting.http import Deadline

ALERT_MAILER = "tenderops_alerts"
# smtplib's refusals: an envelope address -> the server's code and words.
Answers = dict[str, tuple[int, bytes]]
# A configured recipient -> the server's code and words (decoded).
Refused = dict[str, tuple[int, str]]


def alert_connection(timeout: float, deadline: Deadline) -> DeadlineEmailBackend:
    """A connection to the alert mail's SMTP server, each read within ``timeout`` and the whole
    exchange within ``deadline``."""
    backend = import_string(settings.TENDEROPS_ALERT_EMAIL_BACKEND)
    options = settings.TENDEROPS_ALERT_SMTP
    return backend(alias=ALERT_MAILER, timeout=timeout, deadline=deadline, **options)


def smtp_server() -> str:
    """The alert mail's server as its answers name it: ``host:port``."""
    return f"{settings.TENDEROPS_ALERT_SMTP['host']}:{settings.TENDEROPS_ALERT_SMTP['port']}"


class DeadlineEmailBackend(EmailBackend):
    """Django's SMTP backend whose connections ``deadline`` watches (none: as Django's), and
    which keeps each mail's envelope recipients and those the server refused."""

    def __init__(self, *args, deadline: Deadline | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.envelope: list[str] = []
        self.refused: Answers = {}

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        base = super().connection_class
        backend = self

        class Watched(base):
            def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
                sock = super()._get_socket(host, port, timeout)
                if backend.deadline is not None:
                    backend.deadline.watch(sock)
                return sock

            def starttls(self, *args, **kwargs):
                answer = super().starttls(*args, **kwargs)
                if backend.deadline is not None:
                    backend.deadline.watch(self.sock)
                return answer

            def sendmail(self, from_addr, to_addrs, msg, *args, **kwargs) -> Answers:
                # Kept before sending: a refusal of every recipient raises, naming them by
                # these addresses.
                backend.envelope = list(to_addrs)
                backend.refused = super().sendmail(from_addr, to_addrs, msg, *args, **kwargs)
                return backend.refused

        return Watched


def refused_recipients(
    recipients: Sequence[str], envelope: Sequence[str], answers: Answers
) -> Refused:
    """Which of ``recipients`` the server refused, from smtplib's answers by envelope address:
    Django puts each recipient on the envelope in the order given, rewritten (its name
    dropped, its domain IDNA-encoded), so the order, not the text, pairs them."""
    refused: Refused = {}
    for recipient, address in zip(recipients, envelope, strict=False):
        if address in answers:
            code, words = answers[address]
            refused[recipient] = (code, words.decode(errors="replace"))
    return refused
