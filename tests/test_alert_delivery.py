"""Delivering alerts to real local servers: one for each webhook format (checking the body,
the signature and the time window as the vendor does) and an SMTP server (aiosmtpd)."""

import logging
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db.models import F

from runs.alerting.delivery import deliver_alert, deliver_due
from runs.alerting.http import Deadline
from runs.alerting.mail import alert_connection
from runs.logging import redact
from runs.maintenance import AlertEvent, db_now, raise_alert
from runs.maintenance.counters import ALERTS_SENT, read
from runs.models import AlertAttempt, AlertDelivery
from tests.receivers import (
    answer_ok,
    check_dingtalk,
    check_feishu,
    check_webhook,
    check_wecom,
    mail_server,
    receiver,
    send_alert_mail_to,
    subject,
)

DINGTALK_SECRET = "SEC0123456789abcdef-dingtalk-secret"
FEISHU_SECRET = "feishu-secret-qwerty-42"
TOKEN = "dingtalk-access-token-3f9a"


def sent_counts() -> dict[tuple[str, str], int]:
    return {
        (dict(labels)["channel"], dict(labels)["result"]): value
        for labels, value in read(ALERTS_SENT).items()
    }


def due_now(delivery_ids=None) -> None:
    """Make retries due now instead of waiting for their backoff."""
    queryset = AlertDelivery.objects.filter(status="retrying")
    if delivery_ids is not None:
        queryset = queryset.filter(pk__in=delivery_ids)
    queryset.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=2))


@pytest.mark.django_db(transaction=True)
def test_every_channel_gets_one_verified_message(settings):
    settings.TENDEROPS_ALERT_LANGUAGE = "zh-hans"
    with (
        receiver() as webhook,
        receiver() as wecom,
        receiver() as dingtalk,
        receiver(lambda r: (200, {"code": 0, "msg": "success", "data": {}})) as feishu,
        mail_server() as mailbox,
    ):
        settings.TENDEROPS_ALERT_WEBHOOK_URL = webhook.url("/alerts")
        settings.TENDEROPS_WECOM_WEBHOOK_URL = wecom.url("/cgi-bin/webhook/send", "key=k-0001")
        settings.TENDEROPS_DINGTALK_WEBHOOK_URL = dingtalk.url(
            "/robot/send", f"access_token={TOKEN}"
        )
        settings.TENDEROPS_DINGTALK_SECRET = DINGTALK_SECRET
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = feishu.url("/open-apis/bot/v2/hook/0a1b2c3d")
        settings.TENDEROPS_FEISHU_SECRET = FEISHU_SECRET
        # A named address, as TENDEROPS_ALERT_EMAILS accepts it: the envelope gets the address.
        settings.TENDEROPS_ALERT_EMAILS = ["ops@example.invalid", "值班 <oncall@example.invalid>"]
        send_alert_mail_to(settings, mailbox.port)
        started = time.time()
        alert_id = raise_alert(
            AlertEvent.MONITOR_STALE,
            facts={"source": "health", "last_run_at": "2026-11-28T10:00:00+00:00"},
            announce=False,
        )
        deliveries = deliver_alert(alert_id)

        assert {d.channel: d.status for d in deliveries} == dict.fromkeys(
            ("dingtalk", "email", "feishu", "webhook", "wecom"), "sent"
        )
        (request,) = dingtalk.requests
        check_dingtalk(request, DINGTALK_SECRET, started)
        assert request.query["access_token"] == [TOKEN]
        assert "监控已停滞" in request.json["markdown"]["text"]
        (request,) = feishu.requests
        check_feishu(request, FEISHU_SECRET, started)
        (request,) = wecom.requests
        check_wecom(request)
        assert request.query["key"] == ["k-0001"]
        (request,) = webhook.requests
        check_webhook(request)
        assert (request.json["event"], request.json["alert_id"]) == ("monitor_stale", alert_id)
        assert request.json["severity"] == "critical"
        ((recipients, mail),) = mailbox.wait_for(1, timeout=10)
        assert recipients == ["ops@example.invalid", "oncall@example.invalid"]
        assert subject(mail) == "tenderops · 监控已停滞"
    attempts = AlertAttempt.objects.all()
    assert sorted(attempts.values_list("channel", "number", "result")) == [
        (channel, 1, "sent") for channel in ("dingtalk", "email", "feishu", "webhook", "wecom")
    ]
    assert AlertAttempt.objects.get(channel="dingtalk").answer == '{"errcode": 0, "errmsg": "ok"}'
    assert sent_counts() == {
        (channel, "sent"): 1 for channel in ("dingtalk", "email", "feishu", "webhook", "wecom")
    }
    assert deliver_due() == 0  # nothing left to send


def test_a_key_echoed_percent_encoded_is_redacted_too(db, settings):
    def echo(request):  # a gateway that repeats the address it was called at, encoded
        return 400, {"errcode": 40001, "echo": f"{request.path}?{urlencode(request.query, True)}"}

    with receiver(echo) as robot:
        settings.TENDEROPS_DINGTALK_WEBHOOK_URL = robot.url(
            "/robot/send", "access_token=DINGTOKEN%2Bplus%2Fslash"
        )
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    stored = [delivery.answer, *AlertAttempt.objects.values_list("answer", flat=True)]
    assert "access_token=[redacted]" in delivery.answer
    assert not any("DINGTOKEN" in text for text in stored)


@pytest.mark.parametrize(
    ("channel", "answer", "pause"),
    [
        (
            "dingtalk",
            {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
            600,
        ),
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, 60),
    ],
)
def test_a_throttling_robot_makes_the_sender_back_off(db, settings, channel, answer, pause):
    with receiver(lambda r: (200, answer)) as robot:
        setting = {
            "dingtalk": "TENDEROPS_DINGTALK_WEBHOOK_URL",
            "wecom": "TENDEROPS_WECOM_WEBHOOK_URL",
        }
        setattr(settings, setting[channel], robot.url("/send", "access_token=tok-0001"))
        first = raise_alert(AlertEvent.WAITING, "review", announce=False)
        (delivery,) = deliver_alert(first)
        assert (delivery.status, delivery.attempts) == ("retrying", 1)
        attempt = AlertAttempt.objects.get()
        assert attempt.result == "throttled"
        assert attempt.paused_until - attempt.finished_at == timedelta(seconds=pause)
        assert delivery.next_attempt_at >= attempt.paused_until
        # The channel rests: neither this alert nor a new one is sent while it is paused.
        second = raise_alert(AlertEvent.WAITING, "risks", announce=False)
        due_now()
        deliver_due()
        deliver_alert(second)
        assert len(robot.requests) == 1
        assert AlertDelivery.objects.get(alert_id=second).status == "pending"
        AlertAttempt.objects.update(paused_until=F("finished_at"))  # the pause is over
        deliver_due()
        assert len(robot.requests) == 2  # one per pass after a throttling answer
    assert sent_counts() == {(channel, "throttled"): 2}


def test_feishus_signature_error_is_a_configuration_error(db, settings):
    answer = {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
    with receiver(lambda r: (200, answer)) as robot:
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = robot.url("/open-apis/bot/v2/hook/abcd-1234")
        settings.TENDEROPS_FEISHU_SECRET = "wrong-secret"
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        assert (delivery.status, delivery.next_attempt_at) == ("misconfigured", None)
        assert delivery.get_status_display() == "configuration error"
        assert "19021" in delivery.answer
        deliver_due()
        assert len(robot.requests) == 1  # never retried


@pytest.mark.parametrize(
    ("channel", "answer"),
    [
        ("feishu", {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}),
        ("wecom", {"errcode": 93004, "errmsg": "robot disabled"}),
        ("wecom", {"errcode": 93008, "errmsg": "not in the group"}),
        ("dingtalk", {"errcode": 300005, "errmsg": "token is not exist"}),
        ("dingtalk", {"errcode": 400102, "errmsg": "机器人已停用"}),
        ("dingtalk", {"errcode": 400013, "errmsg": "群已被解散"}),
    ],
)
def test_a_robot_that_is_gone_is_a_configuration_error(db, settings, channel, answer):
    # A deleted or disabled robot answers 200 with its code: the address is what to fix.
    with receiver(lambda r: (200, answer)) as robot:
        setting = f"TENDEROPS_{channel.upper()}_WEBHOOK_URL"
        setattr(settings, setting, robot.url("/hook", "key=k-0007&access_token=t-0007"))
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        assert (delivery.status, delivery.next_attempt_at) == ("misconfigured", None)
        deliver_due()
        assert len(robot.requests) == 1  # never retried


def test_a_server_error_is_retried_with_backoff_then_failed(db, settings):
    settings.TENDEROPS_ALERT_MAX_ATTEMPTS = 3
    settings.TENDEROPS_ALERT_RETRY_SECONDS = 60
    with receiver(lambda r: (500, {"error": "internal"})) as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        waits = []
        for _ in range(2):
            attempt = AlertAttempt.objects.order_by("-number").first()
            delivery.refresh_from_db()
            assert delivery.status == "retrying"
            waits.append(delivery.next_attempt_at - attempt.finished_at)
            deliver_due()
            assert len(robot.requests) == attempt.number  # not due yet: nothing sent
            due_now()
            deliver_due()
        delivery.refresh_from_db()
    assert waits == [timedelta(seconds=60), timedelta(seconds=120)]
    assert (delivery.status, delivery.attempts, len(robot.requests)) == ("failed", 3, 3)
    assert list(AlertAttempt.objects.values_list("result", "http_status")) == [("error", 500)] * 3
    assert sent_counts() == {("webhook", "error"): 3}
    # The status where operators read the answer: the body alone hid the 500.
    assert delivery.answer == 'HTTP 500: {"error": "internal"}'


def test_the_rate_limit_holds_back_what_would_exceed_it(db, settings):
    with receiver() as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/send", "key=k-0002")
        for n in range(20):
            raise_alert(AlertEvent.FAILURE_SPIKE, f"kind-{n}", announce=False)
        deliver_due()
        assert len(robot.requests) == 18  # WeCom allows 20 a minute; tenderops sends 18
        assert AlertDelivery.objects.filter(status="pending").count() == 2
        AlertAttempt.objects.update(started_at=F("started_at") - timedelta(seconds=61))
        deliver_due()
        assert len(robot.requests) == 20
    assert AlertDelivery.objects.filter(status="sent").count() == 20


def test_a_pass_waits_seconds_for_its_rate_limit_not_the_next_pass(db, settings):
    # Feishu takes 4 a second: a pass that stopped at the limit sent 4 a minute.
    with receiver(answer_ok("code")) as feishu, receiver() as wecom:
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = feishu.url("/open-apis/bot/v2/hook/abcd-ef01")
        for n in range(7):
            raise_alert(AlertEvent.FAILURE_SPIKE, f"kind-{n}", announce=False)
        deliver_due()
        assert len(feishu.requests) == 7
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = ""
        settings.TENDEROPS_WECOM_WEBHOOK_URL = wecom.url("/send", "key=k-0003")
        for n in range(20):
            raise_alert(AlertEvent.WAITING, f"kind-{n}", announce=False)
        deliver_due()
        assert len(wecom.requests) == 18
        # The next pass comes a moment before the minute's first attempts age out: it waits
        # for them (passes every minute sent 18 every other minute).
        AlertAttempt.objects.filter(channel="wecom").update(
            started_at=db_now() - timedelta(seconds=57)
        )
        deliver_due()
        assert len(wecom.requests) == 20
    starts = list(
        AlertAttempt.objects.filter(channel="feishu")
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    assert starts[4] - starts[0] >= timedelta(seconds=1)  # never 5 within a second


def test_a_proxys_page_instead_of_the_robots_answer_is_retried(db, settings):
    # HTTP 200 with a page of the company's proxy, not the robot's JSON: nothing was sent.
    page = "<html><body>系统维护中，请稍后再试</body></html>".encode()
    replies = iter([(200, page)])
    with receiver(lambda r: next(replies, (200, {"errcode": 0, "errmsg": "ok"}))) as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/send", "key=k-0004")
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        assert (delivery.status, delivery.answer) == ("retrying", page.decode())
        AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=1))
        deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(robot.requests)) == ("sent", 2, 2)


def test_a_redirect_without_a_body_is_recorded_with_its_status(db, settings):
    with receiver(lambda request: (302, b"")) as wecom:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = wecom.url("/cgi-bin/webhook/send", "key=k")
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.answer.startswith("HTTP 302: a redirect")
    assert AlertAttempt.objects.get().answer.startswith("HTTP 302: a redirect")


def test_a_channel_no_longer_configured_fails_its_deliveries(db, settings):
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    alert_id = raise_alert(AlertEvent.TEST, announce=False)
    settings.TENDEROPS_ALERT_WEBHOOK_URL = ""
    deliver_due()
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    assert (delivery.status, delivery.answer) == ("failed", "the channel is no longer configured")


def test_a_closed_port_and_a_down_mail_server_are_network_errors(db, settings):
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.invalid"]
    with mail_server() as mailbox:
        send_alert_mail_to(settings, mailbox.port)
    (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.status == "retrying"
    assert "ConnectionRefusedError" in delivery.answer


def test_credentials_for_a_mail_server_that_takes_none_are_a_configuration_error(db, settings):
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.invalid"]
    with mail_server() as mailbox:
        send_alert_mail_to(settings, mailbox.port, username="tenderops", password="mail-password-1")
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert (delivery.status, delivery.next_attempt_at) == ("misconfigured", None)
    assert "AUTH" in delivery.answer and "mail-password-1" not in delivery.answer


def test_no_secret_reaches_an_answer_or_a_log_line(db, settings, caplog):
    caplog.set_level(logging.DEBUG)

    def echo(request):  # a verbose robot that repeats what it was sent
        return 400, {"errcode": 40001, "echo": f"{request.path}?{request.query}"}

    with receiver(echo) as robot:
        url = robot.url("/robot/send", f"access_token={TOKEN}")
        settings.TENDEROPS_DINGTALK_WEBHOOK_URL = url
        settings.TENDEROPS_DINGTALK_SECRET = DINGTALK_SECRET
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    assert delivery.status == "failed"
    logging.getLogger("runs").warning("delivering to %s with %s", url, DINGTALK_SECRET)
    stored = [delivery.answer, *AlertAttempt.objects.values_list("answer", flat=True)]
    for secret in (TOKEN, DINGTALK_SECRET, url):
        assert all(secret not in text for text in stored)
        assert secret not in caplog.text
    assert "[redacted]" in delivery.answer


def test_a_robots_answer_is_never_obeyed_where_it_is_shown(db, settings, caplog, admin_client):
    """An answer that would clear the operator's terminal and turn text around: written out
    in the stored answer, the journal, the command line and the admin's pages."""
    trap = '{"code": 310000, "msg": "x \u202e\x1b[2J"}'.encode()
    with receiver(lambda request: (200, trap)) as robot:
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = robot.url("/open-apis/bot/v2/hook/abcdef-123")
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    (attempt,) = AlertAttempt.objects.all()
    for shown in (
        delivery.answer,
        attempt.answer,
        caplog.text,
        admin_client.get(f"/admin/runs/alertdelivery/{delivery.pk}/change/").content.decode(),
    ):
        assert "\x1b" not in shown and "\u202e" not in shown
        assert "<U+202E><U+001B>[2J" in shown or "&lt;U+202E&gt;&lt;U+001B&gt;[2J" in shown


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120), (" 5 ", 5), ("999999", 3_600), (None, 60), ("soon", 60), ("²", 60)]
    + [("9" * 5_000, 60), ("١٢", 60)],  # int() refuses both; a webhook answer must not crash
)
def test_a_throttled_answers_retry_after_is_read_safely(header, seconds):
    from runs.alerting.channels import retry_seconds

    assert retry_seconds(header) == seconds


@pytest.mark.parametrize("security", [{"use_ssl": True}, {"use_tls": True}])
def test_the_smtp_options_reach_the_connection_and_the_password_is_never_shown(settings, security):
    """TENDEROPS_ALERT_SMTP, read from the EMAIL_* variables: every option reaches the SMTP
    connection, and its password is redacted as the other secrets are."""
    send_alert_mail_to(settings, 2525, username="ops", password="smtp-secret-77", **security)
    connection = alert_connection(5, Deadline(5))
    assert (connection.host, connection.port, connection.username) == ("127.0.0.1", 2525, "ops")
    assert connection.password == "smtp-secret-77"
    assert (connection.use_ssl, connection.use_tls) == (
        security.get("use_ssl", False),
        security.get("use_tls", False),
    )
    assert redact("535 login smtp-secret-77 refused") == "535 login [redacted] refused"
