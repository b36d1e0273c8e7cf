"""With debug off, every unhandled error of a request reaches stderr with its traceback, and no
configured secret reaches any log line."""

import io
import logging

import pytest
from django.contrib.auth.models import User
from django.test import Client

import runs.admin.views


@pytest.fixture
def captured_console():
    handler = next(h for h in logging.getLogger("django.request").handlers if h.name == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_an_admin_500_is_logged_with_its_traceback(db, captured_console, monkeypatch):
    def broken_stats():
        raise RuntimeError("stats exploded")

    monkeypatch.setattr(runs.admin.views, "read_stats_snapshot", broken_stats)
    user = User.objects.create_superuser("boss", password="pw")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert client.get("/admin/runs/tenderrun/stats/").status_code == 500
    logged = captured_console.getvalue()
    assert "Internal Server Error: /admin/runs/tenderrun/stats/" in logged
    assert "Traceback" in logged and "stats exploded" in logged


def test_secrets_never_reach_a_log_line(settings, captured_console):
    settings.TENDEROPS_API_TOKEN = "very-secret-token-value"
    logger = logging.getLogger("django.request")
    try:
        raise ValueError("failed with very-secret-token-value inside")
    except ValueError:
        logger.exception("calling with %s", "very-secret-token-value")
    logged = captured_console.getvalue()
    assert "very-secret-token-value" not in logged
    assert logged.count("[redacted]") >= 2  # the message and the exception


def test_webhook_keys_are_redacted_on_their_own_and_masked_for_display(settings, captured_console):
    from runs.logging import mask_url, redact

    settings.TENDEROPS_DINGTALK_WEBHOOK_URL = (
        "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef3f9a"
    )
    settings.TENDEROPS_FEISHU_WEBHOOK_URL = "https://open.feishu.cn/open-apis/bot/v2/hook/9f8e-c0de"
    settings.TENDEROPS_FEISHU_SECRET = "feishu-secret-1"
    try:
        raise OSError("sending with feishu-secret-1 failed")
    except OSError:
        logging.getLogger("django.request").exception("token 0123456789abcdef3f9a, hook 9f8e-c0de")
    logged = captured_console.getvalue()
    assert "0123456789abcdef3f9a" not in logged and "9f8e-c0de" not in logged
    assert "feishu-secret-1" not in logged and logged.count("[redacted]") == 4  # and the traceback
    assert redact(settings.TENDEROPS_DINGTALK_WEBHOOK_URL) == "[redacted]"
    assert mask_url(settings.TENDEROPS_DINGTALK_WEBHOOK_URL) == (
        "https://oapi.dingtalk.com/robot/send?access_token=…3f9a"
    )
    assert mask_url(settings.TENDEROPS_FEISHU_WEBHOOK_URL) == (
        "https://open.feishu.cn/open-apis/bot/v2/hook/…c0de"
    )


def test_a_short_word_of_a_webhooks_path_is_not_taken_for_its_key(settings):
    """A webhook at ``/hook``: "webhook" was logged "web[redacted]"."""
    from runs.logging import redact

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:8119/hook"
    assert redact("alert 1 to webhook: sent") == "alert 1 to webhook: sent"
    assert redact("POST http://127.0.0.1:8119/hook failed") == "POST [redacted] failed"
    # Nor a longer word (README's example address): the name was cut from every line.
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "https://hooks.example.com/tenderops"
    assert redact("1 runs failed by tenderops") == "1 runs failed by tenderops"
    # A key in the path has digits, or is long.
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "https://hooks.example.com/t/9f8e2c0d"
    assert redact("hook 9f8e2c0d said no") == "hook [redacted] said no"
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "https://hooks.example.com/t/abcdefghijklmnopqrstuvwx"
    assert redact("hook abcdefghijklmnopqrstuvwx said no") == "hook [redacted] said no"
    # A query's value is a key however short: an answer echoing it alone is redacted.
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "https://hooks.example.com/notify?token=s3cr3t7"
    assert redact("bad token s3cr3t7") == "bad token [redacted]"


def test_error_reports_hide_webhook_addresses(settings):
    from django.views.debug import get_default_exception_reporter_filter

    settings.TENDEROPS_WECOM_WEBHOOK_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
    shown = get_default_exception_reporter_filter().get_safe_settings()
    assert shown["TENDEROPS_WECOM_WEBHOOK_URL"] == "********************"
    assert shown["TENDEROPS_FEISHU_SECRET"] == "********************"
    assert shown["TENDEROPS_ALERT_LANGUAGE"] == settings.TENDEROPS_ALERT_LANGUAGE


def test_a_delivery_that_fails_is_logged_for_the_journal_without_its_key(
    settings, captured_console, db
):
    from runs.alerting.delivery import deliver_alert
    from runs.maintenance import AlertEvent, raise_alert
    from tests.receivers import receiver

    settings.TENDEROPS_ALERT_MAX_ATTEMPTS = 2
    with receiver(lambda r: (500, {"errcode": 500, "errmsg": "internal"})) as wecom:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = wecom.url("/cgi-bin/webhook/send", "key=k-7f3e9a")
        alert_id = raise_alert(AlertEvent.WAITING, "review", announce=False)
        deliver_alert(alert_id)
    logged = captured_console.getvalue()
    assert f"WARNING runs.alerting.delivery alert {alert_id} to wecom, attempt 1:" in logged
    assert "internal" in logged and "(retrying)" in logged
    assert "k-7f3e9a" not in logged


DISCORD_TOKEN = "Xq3vR7kP0sLmN8tY2wZc5bJd9fHg4aEu"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Discord: the token is a segment before the query (?wait=true is documented).
        (
            f"https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN}?wait=true",
            "https://discord.com/api/webhooks/…5678/…4aEu?wait=…true",
        ),
        # Bark and relays: the key is not the last segment.
        (f"https://api.day.app/{DISCORD_TOKEN}/send", "https://api.day.app/…4aEu/…send"),
        # A bare query part: no "=".
        (
            f"https://alerts.example.com/notify?{DISCORD_TOKEN}",
            "https://alerts.example.com/notify?…4aEu",
        ),
    ],
    ids=["discord", "bark", "bare-query"],
)
def test_a_key_anywhere_in_a_webhooks_address_is_masked_and_redacted(db, settings, url, shown):
    """The token was shown in full on the preview and send-test pages, by send_test_alert,
    and in every answer and log line that echoed it."""
    from runs.alerting.channels import CHANNELS
    from runs.logging import mask_url, redact

    settings.TENDEROPS_ALERT_WEBHOOK_URL = url
    assert mask_url(url) == shown == CHANNELS["webhook"].destination()
    assert redact(f"the receiver said: unknown token {DISCORD_TOKEN}") == (
        "the receiver said: unknown token [redacted]"
    )
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.invalid", "pw"))
    for page in ("/admin/runs/alert/preview/", "/admin/runs/alert/send-test/"):
        answer = client.get(page).content.decode()
        assert DISCORD_TOKEN not in answer and shown in answer


def test_ordinary_words_of_a_webhooks_query_are_not_redacted(settings):
    """Every query value was taken for a key: "application/json" was logged
    "application/[redacted]" everywhere."""
    from runs.logging import redact

    settings.TENDEROPS_ALERT_WEBHOOK_URL = (
        "https://hooks.example.com/notify?format=json&wait=true&token=s3cr3t7&u=somepassword"
    )
    line = "POST with Content-Type application/json, wait true: bad token s3cr3t7"
    assert (
        redact(line) == "POST with Content-Type application/json, wait true: bad token [redacted]"
    )
    # A longer value is a key even of letters only, its name saying nothing.
    assert redact("login somepassword refused") == "login [redacted] refused"


def test_what_a_request_sends_cannot_forge_a_log_line(db):
    """Django's security log quotes a refused ``_to_field``: a newline in it wrote a second,
    forged line into the journal, and an escape sequence reached the operator's terminal."""
    handler = next(
        h for h in logging.getLogger("django.security").handlers if h.name == "console_one_line"
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        user = User.objects.create_superuser("viewer", password="pw")
        client = Client(raise_request_exception=False)
        client.force_login(user)
        forged = "x\n2026-12-07 19:00:00,000 ERROR runs.maintenance FAKE: all runs deleted\x1b[2J"
        answer = client.get("/admin/runs/tenderrun/", {"_to_field": forged})
    finally:
        handler.setStream(previous)
    assert answer.status_code == 400
    logged = stream.getvalue()
    assert logged.count("\n") == 1 and "FAKE: all runs deleted" in logged  # one line, quoted
    assert "\x1b" not in logged and "<U+001B>" in logged


def test_a_letters_only_key_in_a_path_is_masked_and_redacted(settings):
    """A Bark key of 22 letters that drew no digit was shown whole (the reviewer)."""
    from runs.logging import mask_url, redact

    key = "AbCdEfGhIjKlMnOpQrStUv"
    settings.TENDEROPS_ALERT_WEBHOOK_URL = f"https://api.day.app/{key}/send"
    assert mask_url(settings.TENDEROPS_ALERT_WEBHOOK_URL) == "https://api.day.app/…StUv/…send"
    assert redact(f"unknown key {key}") == "unknown key [redacted]"
    words = "https://hooks.example.com/webhooks/notifications/tenderops?k=x"
    assert mask_url(words) == "https://hooks.example.com/webhooks/notifications/tenderops?k=…x"
