"""Alerts with a real qcluster against real local receivers: the monitor's digest, the
cooldown, a hanging and a failing webhook retried until they fail, and the stale monitor's
alert and recovery raised from outside the cluster."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client

from runs.maintenance import MONITOR, db_now
from runs.models import Alert, AlertAttempt, AlertDelivery, Heartbeat, MaintenanceAction, TenderRun
from tests.processes import current_database_url, qclusters, run_in_repo, wait_until
from tests.receivers import (
    check_dingtalk,
    check_feishu,
    check_webhook,
    mail_server,
    receiver,
    subject,
)

MIN = timedelta(minutes=1)
DINGTALK_SECRET = "SECcluster-dingtalk-0001"
FEISHU_SECRET = "cluster-feishu-0002"
CLUSTER_WAIT = 150  # the scheduler wakes every 30 s; a tick every minute


def channel_env(settings, **values: str) -> dict[str, str]:
    """The same alert settings for this process and the cluster's (returned as its env)."""
    env = {
        "TENDEROPS_ALERT_LANGUAGE": "zh-hans",
        "TENDEROPS_ALERT_TIMEOUT_SECONDS": "20",
        "TENDEROPS_ALERT_MAX_ATTEMPTS": "2",
        "TENDEROPS_ALERT_RETRY_SECONDS": "1",
        **values,
    }
    smtp_options = {"EMAIL_HOST": "host", "EMAIL_PORT": "port"}  # TENDEROPS_ALERT_SMTP's
    for name, value in env.items():
        typed = int(value) if value.isdigit() else value
        if name == "TENDEROPS_ALERT_EMAILS":
            setattr(settings, name, value.split(","))
        elif name in smtp_options:
            smtp = {**settings.TENDEROPS_ALERT_SMTP, smtp_options[name]: typed}
            settings.TENDEROPS_ALERT_SMTP = smtp
        else:
            setattr(settings, name, typed)
    return {**env, "TENDEROPS_Q_WORKERS": "2"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_cluster_sends_one_digest_per_channel_and_nothing_new_in_the_cooldown(
    make_run, tmp_path, settings
):
    """Healthy robots get one digest each within the tick after; a webhook that hangs for
    30 s and a robot that answers 500 are retried and end up failed (that a hanging robot
    holds no tick is test_alert_deadlines.py's)."""
    # Started over an hour ago: their failing makes no failure spike (that rule has its tests).
    stuck = [make_run(started_ago=(70 + n) * MIN) for n in range(5)]
    with (
        receiver() as dingtalk,
        receiver(lambda r: (200, {"code": 0, "msg": "success"})) as feishu,
        receiver(hang_seconds=30) as hanging,
        receiver(lambda r: (500, {"errmsg": "internal"})) as failing,
        mail_server() as mailbox,
    ):
        env = channel_env(
            settings,
            TENDEROPS_DINGTALK_WEBHOOK_URL=dingtalk.url("/robot/send", "access_token=t-1"),
            TENDEROPS_DINGTALK_SECRET=DINGTALK_SECRET,
            TENDEROPS_FEISHU_WEBHOOK_URL=feishu.url("/open-apis/bot/v2/hook/h-1"),
            TENDEROPS_FEISHU_SECRET=FEISHU_SECRET,
            TENDEROPS_ALERT_WEBHOOK_URL=hanging.url("/alerts"),
            TENDEROPS_WECOM_WEBHOOK_URL=failing.url("/cgi-bin/webhook/send", "key=k-1"),
            TENDEROPS_ALERT_EMAILS="ops@example.invalid",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(mailbox.port),
        )
        started = time.time()
        with qclusters(1, tmp_path, env):
            dingtalk.wait_for(1, timeout=CLUSTER_WAIT)
            feishu.wait_for(1, timeout=30)
            mailbox.wait_for(1, timeout=30)
            assert TenderRun.objects.filter(status="failed").count() == len(stuck)

            # The same kind gets stuck again: the next tick fails it and tells nobody.
            again = make_run(started_ago=75 * MIN)
            wait_until(
                lambda: TenderRun.objects.get(pk=again.pk).status == "failed",
                timeout=CLUSTER_WAIT,
                what="the next tick",
            )
            # Meanwhile the hanging and the failing webhook were tried twice and gave up. A
            # retry that finds its channel being drained by another worker (the hanging one
            # holds it 20 s) waits for the next minute's delivery schedule: one more minute.
            wait_until(
                lambda: (
                    set(AlertDelivery.objects.values_list("channel", "status"))
                    == {
                        ("dingtalk", "sent"),
                        ("feishu", "sent"),
                        ("email", "sent"),
                        ("webhook", "failed"),
                        ("wecom", "failed"),
                    }
                ),
                timeout=CLUSTER_WAIT + 60,
                what="the failing deliveries to give up",
            )
    assert MaintenanceAction.objects.count() == 2
    assert Alert.objects.count() == 1  # one digest; the second tick's kind was in cooldown
    (request,) = dingtalk.requests
    check_dingtalk(request, DINGTALK_SECRET, started)
    assert "监控已将 5 个卡住的任务标记为失败" in request.json["markdown"]["text"]
    (request,) = feishu.requests
    check_feishu(request, FEISHU_SECRET, started)
    ((_to, mail),) = mailbox.messages
    assert subject(mail) == "tenderops · 监控已将 5 个卡住的任务标记为失败"
    assert len(hanging.requests) == 2 and len(failing.requests) == 2
    check_webhook(hanging.requests[0])
    attempts = dict(
        AlertAttempt.objects.filter(channel__in=["webhook", "wecom"], number=2).values_list(
            "channel", "answer"
        )
    )
    assert attempts["webhook"] == "timed out" and "internal" in attempts["wecom"]
    admin = Client()
    admin.force_login(User.objects.create_superuser("boss", "b@example.invalid", "pw"))
    log = admin.get("/admin/runs/alertdelivery/?status=failed").content.decode()
    assert "JSON webhook" in log and "WeCom" in log and "timed out" in log


def watchdog(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_in_repo(
        [sys.executable, "manage.py", "tenderops_watchdog"],
        {**os.environ, **env, "DATABASE_URL": current_database_url()},
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stopped_cluster_is_reported_once_and_its_return_once(tmp_path, settings):
    settings.TENDEROPS_API_TOKEN = "health-token"
    health = {"HTTP_AUTHORIZATION": "Bearer health-token"}
    client = Client()
    with receiver() as robot:
        env = channel_env(settings, TENDEROPS_ALERT_WEBHOOK_URL=robot.url("/alerts"))
        # The cluster stopped after its last tick, 3 intervals and a second ago.
        Heartbeat.objects.create(
            name=MONITOR,
            last_finished_at=db_now() - 3 * MIN - timedelta(seconds=1),
            last_result={"fixed_count": 0},
        )
        assert client.get("/api/apps/tender/admin/health", **health).status_code == 503
        (stale,) = robot.wait_for(1, timeout=30)
        assert stale.json["event"] == "monitor_stale"
        assert "监控已停滞" in stale.json["title"]
        checked = watchdog(env)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert "stale" in checked.stderr
        assert client.get("/api/apps/tender/admin/health", **health).status_code == 503
        assert len(robot.requests) == 1  # once per cooldown, whoever notices

        with qclusters(1, tmp_path, env):
            requests = robot.wait_for(2, timeout=CLUSTER_WAIT)
            assert client.get("/api/apps/tender/admin/health", **health).status_code == 200
            assert watchdog(env).returncode == 0
        assert [r.json["event"] for r in requests] == ["monitor_stale", "monitor_recovered"]
        assert len(robot.requests) == 2
    assert list(Alert.objects.order_by("pk").values_list("event", flat=True)) == [
        "monitor_stale",
        "monitor_recovered",
    ]
