"""Alert mail that a server takes for some recipients and refuses for others (a real local
SMTP server, aiosmtpd): what is recorded, and who is mailed again."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.db.models import F

from runs.alerting.delivery import deliver_alert, deliver_due
from runs.maintenance import AlertEvent, raise_alert
from runs.models import AlertDelivery
from tests.processes import free_port
from tests.receivers import Mailbox, mail_server, send_alert_mail_to

UNKNOWN_USER = "550 5.1.1 Recipient address rejected: User unknown"
GREYLISTED = "450 4.2.0 Recipient address rejected: Greylisted, try again in 60 s"


@contextmanager
def login_server(answer: AuthResult) -> Iterator[int]:
    """A mail server on a free port that answers every login with ``answer``; its port."""
    port = free_port()
    controller = Controller(
        Mailbox(port),
        hostname="127.0.0.1",
        port=port,
        authenticator=lambda *args: answer,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def delivered_to(mailbox) -> list[list[str]]:
    return [recipients for recipients, _mail in mailbox.messages]


def test_a_recipient_refused_for_good_is_named_and_the_others_are_not_mailed_again(
    db, settings, caplog
):
    """The answer said "accepted for 2 recipient(s)": Django's backend drops the refusals
    smtplib returns, and nothing anywhere said the second recipient never got the alert."""
    settings.TENDEROPS_ALERT_EMAILS = ["运维值班 <ops@example.com>", "gone@example.com"]
    with mail_server({"gone@example.com": [UNKNOWN_USER]}) as mailbox:
        send_alert_mail_to(settings, mailbox.port)
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivered_to(mailbox) == [["ops@example.com"]]
    assert (delivery.status, delivery.attempts, delivery.recipients_left) == ("sent", 1, None)
    assert delivery.answer == (
        f"127.0.0.1:{mailbox.port}: accepted for 1 of 2 recipient(s); "
        f"refused: gone@example.com ({UNKNOWN_USER})"
    )
    assert "gone@example.com (550 5.1.1" in caplog.text  # the journal hears of it too


def test_a_recipient_refused_for_now_is_mailed_again_alone(db, settings):
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com", "later@example.com"]
    with mail_server({"later@example.com": [GREYLISTED]}) as mailbox:
        send_alert_mail_to(settings, mailbox.port)
        (first,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=2))
        deliver_due()
    assert (first.status, first.recipients_left) == ("retrying", ["later@example.com"])
    assert "refused: later@example.com (450 4.2.0" in first.answer
    # The one who has it is not mailed twice.
    assert delivered_to(mailbox) == [["ops@example.com"], ["later@example.com"]]
    second = AlertDelivery.objects.get()
    assert (second.status, second.attempts) == ("sent", 2)
    assert second.answer == f"127.0.0.1:{mailbox.port}: accepted for 1 recipient(s)"


def test_a_recipient_left_who_is_no_longer_configured_is_not_mailed(db, settings):
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com", "later@example.com"]
    with mail_server({"later@example.com": [GREYLISTED]}) as mailbox:
        send_alert_mail_to(settings, mailbox.port)
        deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]  # removed, and restarted
        AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=2))
        deliver_due()
    assert delivered_to(mailbox) == [["ops@example.com"]]
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.answer) == (
        "failed",
        "none of the recipients left is configured now",
    )


@pytest.mark.parametrize(
    ("refusals", "status"),
    [
        # Temporary (RFC 5321 4yz): try again later, as for any other temporary error.
        ({"ops@example.com": [GREYLISTED]}, "retrying"),
        ({"MAIL": ["451 4.3.0 Temporary local problem, try again later"]}, "retrying"),
        # Permanent (5yz): a configuration error, not retried.
        ({"ops@example.com": [UNKNOWN_USER]}, "misconfigured"),
        ({"MAIL": ["553 5.7.1 Sender address rejected: not owned by user"]}, "misconfigured"),
    ],
    ids=["greylisted", "busy", "unknown-user", "sender-refused"],
)
def test_a_temporary_refusal_is_retried_and_a_permanent_one_is_not(db, settings, refusals, status):
    """A greylisting or busy server was taken for a configuration error: never retried."""
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]
    code = next(iter(refusals.values()))[0][:3]
    with mail_server(refusals) as mailbox:
        send_alert_mail_to(settings, mailbox.port)
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.status == status, delivery.answer
    assert delivery.answer.startswith(f"127.0.0.1:{mailbox.port}: ") and code in delivery.answer


def test_a_greylisted_mail_is_sent_on_its_retry(db, settings):
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com", "duty@example.com"]
    refusals = {address: [GREYLISTED] for address in settings.TENDEROPS_ALERT_EMAILS}
    with mail_server(refusals) as mailbox:
        send_alert_mail_to(settings, mailbox.port)
        (first,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=2))
        deliver_due()
    assert first.status == "retrying", first.answer
    assert delivered_to(mailbox) == [["ops@example.com", "duty@example.com"]]
    assert AlertDelivery.objects.get().status == "sent"


def test_a_tls_error_is_recorded_with_its_type_and_message(db, settings):
    """An SSLError's ``reason`` (a word of its message) was taken for the error: the answer
    read "str: WRONG_VERSION_NUMBER"."""
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]
    with mail_server() as mailbox:  # plain SMTP, spoken to over TLS
        send_alert_mail_to(settings, mailbox.port, use_ssl=True)
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.status == "retrying"
    assert delivery.answer.startswith(f"127.0.0.1:{mailbox.port}: SSLError: [SSL: ")


def test_a_password_smtplib_cannot_send_is_a_configuration_error_that_shows_none_of_it(
    db, settings, caplog
):
    """Recorded "str: ordinal not in range(128)" and retried as if the server were down;
    the traceback logged quoted a character of the password (start-up refuses such a
    password now: this is what is recorded should one reach the mail)."""
    password = "pässwort-2024"
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]
    with login_server(AuthResult(success=True)) as port:
        send_alert_mail_to(settings, port, username="tenderops", password=password)
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert (delivery.status, delivery.answer) == (
        "misconfigured",
        f"127.0.0.1:{port}: UnicodeEncodeError: ascii cannot carry a character of the text "
        "(ordinal not in range(128))",
    )
    assert "ä" not in caplog.text and "\\xe4" not in caplog.text


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("454 4.7.0 Temporary authentication failure", "retrying"),
        ("535 5.7.8 Authentication credentials invalid", "misconfigured"),
    ],
)
def test_a_temporary_authentication_failure_is_retried_a_wrong_password_is_not(
    db, settings, answer, status
):
    """A 454 (the server's account store unreachable) was recorded as a configuration
    error and never retried (the reviewer)."""
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]
    with login_server(AuthResult(success=False, handled=False, message=answer)) as port:
        send_alert_mail_to(settings, port, username="tenderops", password="secret-2024")
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.status == status, delivery.answer
    assert answer.split(" ")[0] in delivery.answer
