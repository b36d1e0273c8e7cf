"""The alert log, the test button and the robots' preview in a real Chromium, against local
receivers. Its screenshots (test-artifacts/) are the ones in docs/screenshots/."""

import pytest
from django.contrib.auth.models import User

from runs.alerting.delivery import deliver_alert
from runs.maintenance import AlertEvent, raise_alert, raise_digest
from runs.models import AlertDelivery
from tests.browser.conftest import log_in, new_page
from tests.receivers import answer_ok, mail_server, receiver, send_alert_mail_to

PASSWORD = "correct horse battery"
KEY = "wecom-key-0f3e9a7b"


@pytest.fixture
def operator(transactional_db) -> User:
    return User.objects.create_superuser("operator", "op@example.invalid", PASSWORD)


@pytest.fixture
def robots(settings):
    """Every channel configured, each served by a local receiver whose answer a test sets."""
    feishu_ok = answer_ok("code")
    with (
        receiver() as wecom,
        receiver() as dingtalk,
        receiver(feishu_ok) as feishu,
        receiver() as webhook,
        mail_server() as mailbox,
    ):
        settings.TENDEROPS_ALERT_LANGUAGE = "zh-hans"
        settings.TENDEROPS_PUBLIC_URL = "https://tenderops.example.com"
        settings.TENDEROPS_WECOM_WEBHOOK_URL = wecom.url("/cgi-bin/webhook/send", f"key={KEY}")
        settings.TENDEROPS_DINGTALK_WEBHOOK_URL = dingtalk.url(
            "/robot/send", "access_token=5d1c0b9e8f7a6e3f9a"
        )
        settings.TENDEROPS_DINGTALK_SECRET = "SECa1b2c3d4e5f6"
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = feishu.url("/open-apis/bot/v2/hook/7c2e-41d0")
        settings.TENDEROPS_FEISHU_SECRET = "feishu-secret"
        settings.TENDEROPS_ALERT_WEBHOOK_URL = webhook.url("/tenderops")
        settings.TENDEROPS_ALERT_EMAILS = ["ops@example.com"]
        send_alert_mail_to(settings, mailbox.port)
        yield {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu, "webhook": webhook}


def a_week_of_alerts(robots) -> None:
    digest = raise_digest(
        AlertEvent.MONITOR_FAILED,
        {
            "extract_risks": {"count": 7, "ids": ["tr_9f3c01", "tr_9f3c02"], "timeout_minutes": 10},
            "generate_docx": {"count": 2, "ids": ["tr_7a0d11"], "timeout_minutes": 30},
        },
        {"total": 9, "action_id": 41, "rule": "age"},
        announce=False,
    )
    deliver_alert(digest)
    robots["dingtalk"].answer = lambda r: (200, {"errcode": 130101, "errmsg": "send too fast"})
    spike = raise_alert(
        AlertEvent.FAILURE_SPIKE,
        "review",
        {"hour_failed": 8, "hour_finished": 10, "hour_rate": 0.8, "week_rate": 0.03},
        announce=False,
    )
    deliver_alert(spike)
    robots["feishu"].answer = lambda r: (200, {"code": 19021, "msg": "sign match fail"})
    robots["webhook"].answer = lambda r: (503, {"error": "maintenance"})
    deliver_alert(raise_alert(AlertEvent.MONITOR_STALE, facts={"source": "health"}, announce=False))


def test_the_alert_log_in_both_languages(browser, live_server, operator, robots, artifacts):
    a_week_of_alerts(robots)
    statuses = set(AlertDelivery.objects.values_list("status", flat=True))
    assert statuses == {"sent", "retrying", "misconfigured", "pending"}  # DingTalk rests
    for locale, name, words in (
        ("en-US", "alert-log.png", ["configuration error", "retrying", "sent", "DingTalk"]),
        ("zh-CN", "alert-log-zh.png", ["配置错误", "等待重试", "已发送", "钉钉"]),
    ):
        page = new_page(browser, locale=locale)
        log_in(page, live_server.url, "operator", PASSWORD)
        page.goto(f"{live_server.url}/admin/runs/alertdelivery/")
        shown = page.inner_text("#result_list")
        assert all(word in shown for word in words), shown
        assert KEY not in page.content()
        page.screenshot(path=artifacts / name, full_page=True)


def test_the_test_button_and_the_robots_preview(browser, live_server, operator, robots, artifacts):
    page = new_page(browser, locale="zh-CN")
    log_in(page, live_server.url, "operator", PASSWORD)
    page.goto(f"{live_server.url}/admin/runs/alert/")
    page.click("#send-test-alert")
    assert "/cgi-bin/webhook/send?key=…9a7b" in page.inner_text("#alert-channels")
    page.click("input[type=submit]")
    results = page.wait_for_selector("#alert-results").inner_text()
    assert results.count("已发送") == 5, results
    page.screenshot(path=artifacts / "send-test-alert.png", full_page=True)
    assert all(len(robot.requests) == 1 for robot in robots.values())

    page.goto(f"{live_server.url}/admin/runs/alert/preview/")
    for channel in ("wecom", "dingtalk", "feishu", "email", "webhook"):
        section = page.locator(f"#preview-{channel}")
        assert "tenderops · 测试消息" in section.inner_text()
        section.screenshot(path=artifacts / f"preview-{channel}.png")
    page.screenshot(path=artifacts / "preview.png", full_page=True)
    assert KEY not in page.content()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one card a row
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
