"""The alert log in the admin, the test button and the robots' preview; send_test_alert and
tenderops_watchdog; the health endpoint raising the stale alert itself."""

import io
import os
import pwd
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import Client

from runs.alerting.delivery import deliver_alert
from runs.maintenance import AlertEvent, monitor_tick, raise_alert
from runs.maintenance.heartbeat import MONITOR, beat
from runs.models import Alert, AlertDelivery, Heartbeat
from tests.receivers import check_wecom, receiver

MIN = timedelta(minutes=1)
KEY = "wecom-key-5e7c1d2a"
LOG = "/admin/runs/alertdelivery/"
ALERTS = "/admin/runs/alert/"


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.invalid", "pw"))
    return client


def staff(*codenames: str) -> Client:
    name = "staff-" + "-".join(codenames)
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_the_alert_log_shows_channel_status_answer_and_retries(db, settings, superuser_client):
    settings.TENDEROPS_ALERT_MAX_ATTEMPTS = 1
    with receiver(lambda r: (500, {"errcode": -1, "errmsg": "system busy"})) as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/cgi-bin/webhook/send", f"key={KEY}")
        alert_id = raise_alert(AlertEvent.WAITING, "review", {"total": 3}, announce=False)
        (delivery,) = deliver_alert(alert_id)
    page = superuser_client.get(LOG).content.decode()
    assert "WeCom" in page and "failed" in page and "system busy" in page
    assert "runs waiting too long" in page
    detail = superuser_client.get(f"{LOG}{delivery.pk}/change/").content.decode()
    assert "system busy" in detail and ">500<" in detail  # the attempt, with its HTTP status
    alerts = superuser_client.get(ALERTS).content.decode()
    assert "WeCom: failed" in alerts
    for url in (LOG, f"{LOG}{delivery.pk}/change/", ALERTS, f"{ALERTS}{alert_id}/change/"):
        assert KEY not in superuser_client.get(url).content.decode()


def test_the_test_button_sends_to_every_channel_and_shows_each_answer(db, settings):
    with receiver() as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/cgi-bin/webhook/send", f"key={KEY}")
        assert staff("view_alert").get(f"{ALERTS}send-test/").status_code == 403
        client = staff("view_alert", "send_test_alert")
        listed = client.get(f"{ALERTS}send-test/").content.decode()
        assert KEY not in listed
        assert "/cgi-bin/webhook/send?key=…1d2a" in listed
        shown = client.post(f"{ALERTS}send-test/").content.decode()
        (request,) = robot.requests
    check_wecom(request)
    assert "测试消息" in request.json["markdown"]["content"]  # the default language
    assert "staff-view_alert-send_test_alert" in request.json["markdown"]["content"]
    assert "sent" in shown and "errcode" in shown and KEY not in shown
    assert 'id="send-test-unfinished"' not in shown  # every answer is final
    assert Alert.objects.get().event == "test"
    assert AlertDelivery.objects.get().status == "sent"
    assert 'id="send-test-alert"' in client.get(ALERTS).content.decode()
    assert 'id="send-test-alert"' not in staff_viewer_page()


def test_the_test_button_without_a_channel_says_what_to_set_and_leads_back(db):
    page = staff("view_alert", "send_test_alert").get(f"{ALERTS}send-test/").content.decode()
    assert 'id="no-channels"' in page and "restart the web server and the cluster" in page
    assert f'<a href="{LOG}">Open the alert log</a>' in page


def test_the_test_button_spends_its_own_time_at_most_then_leaves_the_rest_to_the_schedule(
    db, settings, monkeypatch
):
    """With an alert timeout start-up accepts (up to 60 s) and a robot that hangs, the request
    outlived gunicorn's 30 s: a 500, and the delivery left "sending"."""
    from runs.admin import alerts

    assert alerts.SEND_TEST_SECONDS <= 15  # half of gunicorn's timeout, for the rest
    monkeypatch.setattr(alerts, "SEND_TEST_SECONDS", 1)  # not to wait 15 s here
    settings.TENDEROPS_ALERT_TIMEOUT_SECONDS = 45
    client = staff("view_alert", "send_test_alert")
    # It answers after 5 s: within the alert timeout, past the page's second.
    with receiver(hang_seconds=5) as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/cgi-bin/webhook/send", f"key={KEY}")
        page = client.post(f"{ALERTS}send-test/").content.decode()
        robot.wait_for(1, timeout=10)
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.answer) == ("retrying", "timed out")
    assert 'id="send-test-unfinished"' in page and "waits 1 seconds at most" in page
    assert f'href="{ALERTS}{delivery.alert_id}/change/"' in page


def staff_viewer_page() -> str:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_alertdelivery"))
    client = Client()
    client.force_login(user)
    return client.get(LOG).content.decode()


def test_the_preview_shows_each_robot_without_a_secret(db, settings, superuser_client):
    settings.TENDEROPS_DINGTALK_WEBHOOK_URL = (
        "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef3f9a"
    )
    settings.TENDEROPS_DINGTALK_SECRET = "SECdingtalksecret0001"
    page = superuser_client.get(f"{ALERTS}preview/").content.decode()
    for channel in ("email", "webhook", "wecom", "dingtalk", "feishu"):
        assert f'id="preview-{channel}"' in page
    assert "https://oapi.dingtalk.com/robot/send?access_token=…3f9a" in page
    assert "0123456789abcdef" not in page and "SECdingtalksecret0001" not in page
    assert "测试消息" in page
    assert '<a href="/admin/runs/">Operations</a>' in page  # the breadcrumbs, as elsewhere
    assert staff().get(f"{ALERTS}preview/").status_code == 403


def test_the_digest_link_opens_the_runs_of_that_action(make_run, superuser_client):
    stuck = [make_run(started_ago=(20 + n) * MIN) for n in range(2)]
    other = make_run(status="failed", started_ago=5 * MIN)
    monitor_tick()
    alert = Alert.objects.get()
    page = superuser_client.get(f"/admin/runs/tenderrun/?action={alert.facts['action_id']}")
    assert page.status_code == 200
    shown = page.content.decode()
    assert all(run.id in shown for run in stuck) and other.id not in shown
    unreadable = superuser_client.get("/admin/runs/tenderrun/?action=x")
    assert unreadable.status_code == 302 and unreadable["Location"] == "/admin/runs/tenderrun/"
    # The alert's page says what the channels were told, not its title alone: the runs.
    told = superuser_client.get(f"/admin/runs/alert/{alert.pk}/change/").content.decode()
    assert 'class="run-text"' in told and all(run.id in told for run in stuck)


def test_send_test_alert_command(db, settings, monkeypatch):
    # $USER and $LOGNAME are the caller's to set: the audit names the process's account.
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    with pytest.raises(CommandError) as none:
        call_command("send_test_alert", stdout=io.StringIO())
    assert none.value.returncode == 2
    with receiver() as good, receiver(lambda r: (200, {"code": 19021, "msg": "sign"})) as bad:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = good.url("/send", f"key={KEY}")
        out = io.StringIO()
        call_command("send_test_alert", stdout=out)
        assert "sent" in out.getvalue() and "…1d2a" in out.getvalue()
        assert KEY not in out.getvalue()
        settings.TENDEROPS_WECOM_WEBHOOK_URL = ""
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = bad.url("/open-apis/bot/v2/hook/abcd-ef01")
        out = io.StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("send_test_alert", stdout=out)
        assert failed.value.returncode == 1
        assert "configuration error" in out.getvalue() and "19021" in out.getvalue()
    assert (len(good.requests), len(bad.requests)) == (1, 1)
    requested_by = {alert.facts["requested_by"] for alert in Alert.objects.all()}
    assert requested_by == {f"{pwd.getpwuid(os.getuid()).pw_name} (manage.py send_test_alert)"}


def test_the_watchdog_alerts_once_while_stale_and_once_on_recovery(db, settings):
    with receiver() as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/send", f"key={KEY}")
        for _ in range(2):
            with pytest.raises(CommandError) as stale:
                call_command("tenderops_watchdog", stdout=io.StringIO())
            assert stale.value.returncode == 1
            assert "stale" in str(stale.value)
        assert len(robot.requests) == 1  # the second run is inside the cooldown
        assert "监控已停滞" in robot.requests[0].json["markdown"]["content"]
        beat(MONITOR, {"fixed_count": 0})  # the monitor runs again
        out = io.StringIO()
        call_command("tenderops_watchdog", stdout=out)
        call_command("tenderops_watchdog", stdout=io.StringIO())
        assert "running" in out.getvalue()
        assert f"({settings.TIME_ZONE})" in out.getvalue()  # as the admin and the schedules
        assert len(robot.requests) == 2
        assert "监控已恢复" in robot.requests[1].json["markdown"]["content"]
    assert list(Alert.objects.order_by("pk").values_list("event", flat=True)) == [
        "monitor_stale",
        "monitor_recovered",
    ]


def test_the_watchdog_retries_the_stale_alert_that_a_robot_refused(db, settings):
    # The cluster, which retries deliveries, is what has stopped: the watchdog retries it.
    replies = iter([(500, {"errcode": -1, "errmsg": "system busy"})])
    with receiver(lambda r: next(replies, (200, {"errcode": 0, "errmsg": "ok"}))) as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/send", f"key={KEY}")
        with pytest.raises(CommandError) as first:
            call_command("tenderops_watchdog", stdout=io.StringIO())
        assert "WeCom retrying" in str(first.value) and "sent" not in str(first.value)
        # Its backoff has passed by the next run of cron.
        AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(hours=1))
        with pytest.raises(CommandError) as second:
            call_command("tenderops_watchdog", stdout=io.StringIO())
        assert "alert #" not in str(second.value)  # no new alert inside the cooldown
        assert len(robot.requests) == 2
    (delivery,) = AlertDelivery.objects.all()
    assert (delivery.status, delivery.attempts) == (AlertDelivery.Status.SENT, 2)


@pytest.mark.django_db(transaction=True)
def test_the_health_endpoint_alerts_once_while_stale_and_once_on_recovery(settings):
    settings.TENDEROPS_API_TOKEN = "health-token"
    client = Client()
    auth = {"HTTP_AUTHORIZATION": "Bearer health-token"}
    with receiver() as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        beat(MONITOR, {"fixed_count": 0})
        Heartbeat.objects.filter(name=MONITOR).update(
            last_finished_at=Heartbeat.objects.get(name=MONITOR).last_finished_at - 4 * MIN
        )
        assert client.get("/api/apps/tender/admin/health", **auth).status_code == 503
        (stale,) = robot.wait_for(1, timeout=20)
        assert stale.json["event"] == "monitor_stale"
        assert stale.json["facts"]["source"] == "health"
        assert client.get("/api/apps/tender/admin/health", **auth).status_code == 503
        beat(MONITOR, {"fixed_count": 0})
        assert client.get("/api/apps/tender/admin/health", **auth).status_code == 200
        assert client.get("/api/apps/tender/admin/health", **auth).status_code == 200
        requests = robot.wait_for(2, timeout=20)
        assert [r.json["event"] for r in requests] == ["monitor_stale", "monitor_recovered"]
    assert Alert.objects.count() == 2


def test_an_alert_shows_its_time_as_every_page_does_and_a_digests_kinds(db, superuser_client):
    from runs.admin.display import short_time
    from runs.maintenance import raise_digest

    alert_id = raise_digest(AlertEvent.WAITING, {"review": {"count": 2}, "risks": {"count": 1}})
    alert = Alert.objects.get(pk=alert_id)
    assert alert.kind == ""  # a digest of two kinds
    listed = superuser_client.get(ALERTS).content.decode()
    detail = superuser_client.get(f"{ALERTS}{alert_id}/change/").content.decode()
    for page in (listed, detail):
        assert short_time(alert.raised_at) in page  # 2026-12-04 18:26:36, seconds included
        assert "review, risks" in page
    # Where the message leads (the facts hold only ids): the pending runs.
    assert ">Open the pending runs in the admin</a>" in detail
    assert "/admin/runs/tenderrun/?status=pending" in detail


def test_an_alerts_page_lists_every_kind_and_says_when_nothing_was_delivered(db, superuser_client):
    from runs.maintenance import raise_digest

    kinds = {f"kind_number_{n:02d}": {"count": 1} for n in range(12)}
    alert_id = raise_digest(AlertEvent.WAITING, kinds)
    listed = superuser_client.get(ALERTS).content.decode()
    detail = superuser_client.get(f"{ALERTS}{alert_id}/change/").content.decode()
    assert "kind_number_11" not in listed  # the list's column is cut
    assert "kind_number_11" in detail
    assert "no channel was configured when it was raised" in detail
    assert "/history/" not in detail  # nobody edits an alert: Django's empty history page


def test_the_index_and_the_messages_name_one_alert_log(db):
    """The home page's "Alert log" is the page the messages' "Open the alert log" opens."""
    from django.contrib.auth.models import User
    from django.test import Client

    from runs.alerting.messages import render
    from runs.maintenance.alerts import record_test_alert
    from runs.models import Alert

    client = Client()
    client.force_login(User.objects.create_superuser("boss", "b@example.invalid", "pw"))
    index = client.get("/admin/").content.decode()
    message = render(Alert.objects.get(pk=record_test_alert("boss")), "en")
    assert message.link_text == "Open the alert log"
    assert f'<a href="{message.link}">Alert log</a>' in index
    assert "<h1>Alert log</h1>" in client.get(message.link).content.decode()  # not "deliveries"


def test_the_alert_log_says_when_no_channel_is_configured(db, settings, superuser_client):
    """The home page's "Alert log" opened an empty list, with no word of why."""
    raise_alert(AlertEvent.WAITING, "review", {"total": 3}, announce=False)
    page = superuser_client.get(LOG).content.decode()
    assert 'id="no-alert-channel"' in page and f'href="{ALERTS}"' in page
    settings.TENDEROPS_ALERT_EMAILS = ["oncall@example.com"]
    assert 'id="no-alert-channel"' not in superuser_client.get(LOG).content.decode()


def test_an_alert_is_listed_in_the_pages_words_and_its_deliveries_as_sent(
    db, settings, superuser_client
):
    """Alerts in Chinese, an English page: the title stayed Chinese above an English text."""
    from runs.alerting.messages import render

    settings.TENDEROPS_ALERT_LANGUAGE = "zh-hans"
    with receiver() as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/cgi-bin/webhook/send", f"key={KEY}")
        alert_id = raise_alert(AlertEvent.WAITING, "review", {"total": 3}, announce=False)
        (delivery,) = deliver_alert(alert_id)
    sent = render(Alert.objects.get(pk=alert_id))
    listed = superuser_client.get(ALERTS).content.decode()
    in_english = render(Alert.objects.get(pk=alert_id), "en").title
    assert in_english in listed and sent.title not in listed
    detail = superuser_client.get(f"{ALERTS}{alert_id}/change/").content.decode()
    assert in_english in detail and sent.title not in detail
    as_sent = superuser_client.get(f"{LOG}{delivery.pk}/change/").content.decode()
    assert sent.title in as_sent  # the delivery's page: what the robot got
