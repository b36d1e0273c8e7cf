"""Raising alerts: once per cooldown per event and kind, digests, incidents and recoveries,
the monitor's digest, the failure-spike rule, and every event's message in both languages."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import set_script_prefix
from django.utils import translation

from runs.alerting.channels import CHANNELS
from runs.alerting.message import fit
from runs.alerting.messages import render
from runs.maintenance import (
    AlertEvent,
    check_failure_spikes,
    find_failure_spikes,
    monitor_tick,
    raise_alert,
    raise_digest,
    resolve_alert,
)
from runs.models import Alert, AlertDelivery, AlertGate, MaintenanceAction
from tests.conftest import statuses

MIN = timedelta(minutes=1)


def age_gate(event: str, minutes: int) -> None:
    """Move the gate's last pass ``minutes`` into the past (the cooldown's clock)."""
    AlertGate.objects.filter(event=event).update(
        last_raised_at=AlertGate.objects.get(event=event).last_raised_at - minutes * MIN
    )


def test_an_alert_is_recorded_once_per_cooldown_per_event_and_kind(db, settings):
    settings.TENDEROPS_ALERT_COOLDOWN_MINUTES = 30
    first = raise_alert(AlertEvent.FAILURE_SPIKE, "review", {"hour_rate": 0.5})
    assert first is not None
    assert raise_alert(AlertEvent.FAILURE_SPIKE, "review", {"hour_rate": 0.9}) is None
    assert raise_alert(AlertEvent.FAILURE_SPIKE, "generate_docx") is not None
    assert raise_alert(AlertEvent.WAITING, "review") is not None  # another event
    AlertGate.objects.filter(event=AlertEvent.FAILURE_SPIKE, kind="review").update(
        last_raised_at=AlertGate.objects.get(kind="review", event="failure_spike").last_raised_at
        - 31 * MIN
    )
    again = raise_alert(AlertEvent.FAILURE_SPIKE, "review", {"hour_rate": 0.7})
    assert again is not None
    assert list(
        Alert.objects.filter(kind="review", event="failure_spike").values_list("facts", flat=True)
    ) == [{"hour_rate": 0.5}, {"hour_rate": 0.7}]


def test_a_digest_leaves_out_the_kinds_in_their_cooldown(db):
    first = raise_digest(
        AlertEvent.MONITOR_FAILED,
        {"review": {"count": 2, "ids": ["tr_1", "tr_2"]}, "risks": {"count": 1, "ids": ["tr_3"]}},
        {"total": 3, "action_id": 7},
    )
    assert Alert.objects.get(pk=first).facts == {
        "total": 3,
        "action_id": 7,
        "kinds": {
            "review": {"count": 2, "ids": ["tr_1", "tr_2"]},
            "risks": {"count": 1, "ids": ["tr_3"]},
        },
    }
    assert Alert.objects.get(pk=first).kind == ""
    second = raise_digest(
        AlertEvent.MONITOR_FAILED,
        {"review": {"count": 5}, "generate_docx": {"count": 4}},
        {"total": 9},
    )
    assert Alert.objects.get(pk=second).facts["kinds"] == {"generate_docx": {"count": 4}}
    assert Alert.objects.get(pk=second).kind == "generate_docx"
    # Its title counts all 9; its lines list 4 and say where the other 5 are.
    message = render(Alert.objects.get(pk=second), "en")
    assert message.title.endswith("the monitor failed 9 stuck runs")
    assert "5 more runs of kinds with an alert within the cooldown (30 min)." in message.lines
    assert raise_digest(AlertEvent.MONITOR_FAILED, {"review": {"count": 1}}) is None
    assert raise_digest(AlertEvent.MONITOR_FAILED, {}) is None
    assert Alert.objects.count() == 2


def test_one_pending_delivery_per_configured_channel(db, settings):
    assert AlertDelivery.objects.filter(alert_id=raise_alert(AlertEvent.WAITING)).count() == 0
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.TENDEROPS_WECOM_WEBHOOK_URL = "http://127.0.0.1:9/cgi-bin/webhook/send?key=k-1234"
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.invalid"]
    alert_id = raise_alert(AlertEvent.LATE_FINISH, "review")
    deliveries = AlertDelivery.objects.filter(alert_id=alert_id)
    assert sorted(deliveries.values_list("channel", "status", "attempts")) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
        ("wecom", "pending", 0),
    ]
    assert all(d.next_attempt_at is not None for d in deliveries)


def test_an_incident_recovers_once_and_its_cooldown_starts_again(db):
    stale = raise_alert(AlertEvent.MONITOR_STALE, facts={"source": "health"})
    assert stale is not None
    assert raise_alert(AlertEvent.MONITOR_STALE, facts={"source": "watchdog"}) is None
    recovered = resolve_alert(AlertEvent.MONITOR_STALE, facts={"source": "monitor"})
    assert Alert.objects.get(pk=recovered).event == "monitor_recovered"
    assert resolve_alert(AlertEvent.MONITOR_STALE) is None
    assert raise_alert(AlertEvent.MONITOR_STALE) is not None  # a new incident
    assert list(Alert.objects.order_by("pk").values_list("event", flat=True)) == [
        "monitor_stale",
        "monitor_recovered",
        "monitor_stale",
    ]


def test_nothing_to_resolve_raises_nothing(db):
    assert resolve_alert(AlertEvent.MONITOR_STALE) is None
    raise_alert(AlertEvent.WAITING)
    assert resolve_alert(AlertEvent.MONITOR_STALE) is None
    assert Alert.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_alerts_raised_at_once_by_many_are_recorded_once():
    callers = 8
    barrier = threading.Barrier(callers)
    results: list = []

    def call() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(raise_alert(AlertEvent.MONITOR_STALE, facts={"source": "health"}))
            barrier.wait(timeout=30)
            results.append(resolve_alert(AlertEvent.MONITOR_STALE))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2 * callers
    assert len([r for r in results if r is not None]) == 2
    assert sorted(Alert.objects.values_list("event", flat=True)) == [
        "monitor_recovered",
        "monitor_stale",
    ]


def test_the_monitor_tick_records_one_digest_and_none_for_the_same_kind_in_cooldown(make_run):
    first = [make_run(started_ago=(20 + n) * MIN) for n in range(7)]
    other = make_run(started_ago=40 * MIN, kind="review", run_type="review")
    result = monitor_tick()
    assert result.fixed_count == 8
    (alert,) = Alert.objects.all()
    action = MaintenanceAction.objects.get()
    assert alert.event == "monitor_failed"
    assert alert.facts["action_id"] == result.action_id == action.pk
    assert alert.facts["total"] == 8 and alert.facts["rule"] == "silence"  # the default rule
    kinds = alert.facts["kinds"]
    assert kinds["review"] == {"count": 1, "ids": [other.id], "timeout_minutes": 10}
    assert kinds["extract_project_info"]["count"] == 7
    assert kinds["extract_project_info"]["ids"] == [run.id for run in reversed(first)][:5]

    later = make_run(started_ago=30 * MIN)
    assert monitor_tick().fixed_count == 1
    assert statuses(later) == ["failed"]
    assert Alert.objects.count() == 1  # the same kind, inside the cooldown


def test_a_broken_alert_recording_never_breaks_the_tick(make_run, caplog):
    with connection.cursor() as cursor:  # the alert table as a broken migration left it
        cursor.execute("ALTER TABLE tenderops_alert RENAME TO tenderops_alert_gone")
    stuck = make_run(started_ago=30 * MIN)
    assert monitor_tick().fixed_count == 1
    assert statuses(stuck) == ["failed"]
    assert MaintenanceAction.objects.count() == 1  # failed and audited all the same
    assert "could not record its alert" in caplog.text
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tenderops_alert_gone RENAME TO tenderops_alert")
    assert not Alert.objects.exists()


def spike_runs(make_run, kind: str, *, week: tuple[int, int], hour: tuple[int, int]) -> None:
    """``week`` and ``hour``: (finished, failed) runs of ``kind`` in each window."""
    for (finished, failed), ago in ((week, 2 * 24 * 60), (hour, 20)):
        for n in range(finished):
            make_run(
                status="failed" if n < failed else "success",
                kind=kind,
                run_type=kind,
                started_ago=ago * MIN,
                error="LLM 调用超时" if n < failed else None,
            )


def test_the_failure_spike_rule(make_run, settings):
    settings.TENDEROPS_SPIKE_MIN_FAILURES = 5
    spike_runs(make_run, "review", week=(50, 1), hour=(8, 6))  # 2 % -> 75 %: a spike
    spike_runs(make_run, "risks", week=(10, 0), hour=(10, 4))  # 4 failures: too few
    spike_runs(make_run, "directory", week=(10, 5), hour=(10, 6))  # 50 % -> 60 %: usual
    spike_runs(make_run, "docx", week=(0, 0), hour=(20, 5))  # new kind, 25 %: a spike
    make_run(status="running", kind="review", run_type="review", started_ago=5 * MIN)
    spikes = {spike.kind: spike for spike in find_failure_spikes()}
    assert set(spikes) == {"review", "docx"}
    assert (spikes["review"].hour_failed, spikes["review"].hour_finished) == (6, 8)
    assert spikes["review"].week_rate == pytest.approx(1 / 50)

    (raised,) = check_failure_spikes()  # one message for both kinds, not one per kind
    spike = Alert.objects.get(pk=raised)
    assert (spike.event, spike.kind, sorted(spike.facts["kinds"])) == (
        "failure_spike",
        "",
        ["docx", "review"],
    )
    review = spike.facts["kinds"]["review"]
    assert review["hour_rate"] == 0.75 and review["top_error"] == "LLM 调用超时"
    assert review["count"] == 6
    assert check_failure_spikes() == []  # inside the cooldown
    message = render(spike, "en")
    assert message.title == "tenderops · 2 kinds are failing far more than usual"
    line = "review: 6 runs; 75.0 % of the last hour's 8 finished runs failed (2.0 % in the 7 days"
    assert line in message.text(16_000)


def test_a_spike_alert_of_one_kind_recorded_before_digests_still_renders(db):
    facts = {"hour_failed": 9, "hour_finished": 10, "hour_rate": 0.9, "week_rate": 0.02}
    alert = Alert.objects.get(pk=raise_alert(AlertEvent.FAILURE_SPIKE, "review", facts))
    message = render(alert, "en")
    assert message.title == "tenderops · review is failing: 90.0 % in the last hour"
    line = "review: 9 runs; 90.0 % of the last hour's 10 finished runs failed"
    assert line in message.text(16_000)


RICH_FACTS = {
    AlertEvent.MONITOR_FAILED: {"total": 900, "action_id": 12, "rule": "age"},
    AlertEvent.STUCK_NOT_FAILED: {"total": 900, "rule": "silence"},
    AlertEvent.WAITING: {"total": 900, "threshold_minutes": 30},
    AlertEvent.LATE_FINISH: {"total": 900},
    AlertEvent.FAILURE_SPIKE: {},
    AlertEvent.MONITOR_STALE: {"source": "health", "last_run_at": "2026-11-28T10:00:00+00:00"},
    AlertEvent.MONITOR_RECOVERED: {"source": "monitor"},
    AlertEvent.RESOLVED: {"resolves": "waiting"},
    AlertEvent.TEST: {"requested_by": "admin"},
}
MANY_KINDS = {
    f"kind_{n}_{'很长的类型' * 20}": {
        "count": 150,
        "ids": [f"tr_{n:032x}"] * 5,
        "timeout_minutes": 10,
        "suggested_minutes": 25,
        "oldest_minutes": 95,
        "hour_finished": 160,
        "hour_rate": 0.9375,
        "week_rate": 0.02,
        "top_error": "长错误" * 400,
    }
    for n in range(60)
}


@pytest.mark.parametrize("event", list(AlertEvent))
def test_every_event_raised_directly_renders_in_both_languages_within_each_robot(db, event):
    if event in {
        AlertEvent.MONITOR_FAILED,
        AlertEvent.STUCK_NOT_FAILED,
        AlertEvent.WAITING,
        AlertEvent.LATE_FINISH,
        AlertEvent.FAILURE_SPIKE,
    }:
        alert_id = raise_digest(event, MANY_KINDS, RICH_FACTS[event])
    else:
        odd_kind = "review<font color=x>[x](http://evil)\u202e\x1b[31m"
        alert_id = raise_alert(event, odd_kind, RICH_FACTS[event])
    alert = Alert.objects.get(pk=alert_id)
    titles = {}
    for language in ("zh-hans", "en"):
        message = render(alert, language)
        titles[language] = message.title
        assert message.title.startswith("tenderops")
        assert message.link
        for channel in ("wecom", "dingtalk", "feishu"):  # the webhook's JSON carries raw data
            _url, payload = CHANNELS[channel].request(alert, message)
            text = str(payload)
            assert "<font color=x>" not in text and "](http://evil)" not in text
            raw = json.dumps(payload, ensure_ascii=False)  # str() would escape them
            assert "\u202e" not in raw and "\x1b" not in raw
        assert CHANNELS["webhook"].request(alert, message)[1]["text"] == message.text(16_000)
        wecom = CHANNELS["wecom"].request(alert, message)[1]["markdown"]["content"]
        dingtalk = CHANNELS["dingtalk"].request(alert, message)[1]["markdown"]["text"]
        assert len(wecom.encode()) <= 4_096 and len(dingtalk.encode()) <= 4_000
        if language == "zh-hans":  # formatted after render, still in its language
            assert "more lines" not in wecom + dingtalk
            assert message.text(16_000).endswith(f"{message.link_text}：{message.link}")
    assert titles["zh-hans"] != titles["en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in titles["zh-hans"].replace("很长的类型", ""))


def test_a_digest_of_many_short_kinds_fits_feishus_20_kb(db, settings):
    """Feishu's rich text costs each line some 30 bytes of JSON besides its text."""
    settings.TENDEROPS_FEISHU_SECRET = "feishu-secret"
    short_kinds = {
        f"k{n:03d}": {"count": 1, "ids": [f"tr_{n:032x}"], "timeout_minutes": 10}
        for n in range(400)
    }
    alert = Alert.objects.get(pk=raise_digest(AlertEvent.MONITOR_FAILED, short_kinds, {}))
    for language in ("zh-hans", "en"):
        _url, payload = CHANNELS["feishu"].request(alert, render(alert, language))
        body = json.dumps(payload, ensure_ascii=False).encode()
        assert 15_000 < len(body) <= 20_000  # within the limit, and not needlessly short


def test_without_a_public_url_the_link_is_a_named_path_and_the_webhook_has_none(db, settings):
    settings.TENDEROPS_PUBLIC_URL = ""
    alert = Alert.objects.get(pk=raise_alert(AlertEvent.TEST, "", {"requested_by": "admin"}))
    message = render(alert, "en")
    assert message.link.startswith("/admin/") and not message.is_absolute
    assert CHANNELS["webhook"].request(alert, message)[1]["link"] is None
    wecom = CHANNELS["wecom"].request(alert, message)[1]["markdown"]["content"]
    assert wecom.endswith(f"{message.link_text}: {message.link}")
    settings.TENDEROPS_PUBLIC_URL = "https://ops.example.com"
    message = render(alert, "en")
    assert CHANNELS["webhook"].request(alert, message)[1]["link"] == message.link
    assert message.link.startswith("https://ops.example.com/admin/")


def test_a_link_under_a_sub_path_is_the_same_from_the_web_and_the_cluster(db, settings):
    settings.TENDEROPS_PUBLIC_URL = "https://ops.example.com/tenderops"
    alert = Alert.objects.get(pk=raise_alert(AlertEvent.TEST, "", {"requested_by": "admin"}))
    from_the_cluster = render(alert, "en").link
    set_script_prefix("/tenderops/")  # as a request's SCRIPT_NAME sets it in the web process
    try:
        from_the_web = render(alert, "en").link
    finally:
        set_script_prefix("/")
    assert from_the_web == from_the_cluster
    assert from_the_web.startswith("https://ops.example.com/tenderops/admin/")


def test_a_digests_lines_take_the_languages_punctuation(db):
    kinds = {"review": {"count": 2, "ids": ["tr_a", "tr_b"], "timeout_minutes": 10}}
    alert = Alert.objects.get(pk=raise_digest(AlertEvent.MONITOR_FAILED, kinds, {"total": 2}))
    assert "review: 2 runs; timeout 10 min (tr_a, tr_b)" in render(alert, "en").text(16_000)
    chinese = render(alert, "zh-hans").text(16_000)
    assert "review：2 个任务；超时阈值 10 分钟（tr_a, tr_b）" in chinese


@pytest.mark.parametrize(("minutes", "said"), [(1, "every minute:"), (5, "every 5 minutes:")])
def test_the_stale_monitors_interval_reads_as_english(db, settings, minutes, said):
    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = minutes
    alert_id = raise_alert(AlertEvent.MONITOR_STALE, "", {"source": "health"}, announce=False)
    assert f"It should run {said}" in "\n".join(render(Alert.objects.get(pk=alert_id), "en").lines)


def test_a_message_cut_short_counts_its_lines_left_out_in_english():
    with translation.override("en"):
        one_left_out = fit("head", ["kept", "x" * 100], "tail", 40)
        two_left_out = fit("head", ["kept", "x" * 100, "y"], "tail", 40)
    assert one_left_out == "head\nkept\n… 1 more line\ntail"
    assert two_left_out == "head\nkept\n… 2 more lines\ntail"


def test_a_recovery_in_report_mode_does_not_say_runs_are_being_rescued(db, settings):
    from runs.maintenance.alerts import resolve_alert

    settings.TENDEROPS_MONITOR_MODE = "report"
    raise_alert(AlertEvent.MONITOR_STALE, "", {"source": "health"}, announce=False)
    alert_id = resolve_alert(AlertEvent.MONITOR_STALE, "", {"source": "monitor"}, announce=False)
    _raised, first, *_rest = render(Alert.objects.get(pk=alert_id), "en").lines
    assert "in report mode: it records stuck runs, fails none" in first


def test_a_digest_shows_a_blank_kind_and_an_empty_id_as_the_pages_do(db):
    from runs.maintenance import raise_digest

    alert_id = raise_digest(AlertEvent.WAITING, {"": {"count": 1, "ids": ["", "tr_1"]}})
    _raised, line, *_rest = render(Alert.objects.get(pk=alert_id), "en").lines
    assert line.startswith("–: 1 run") and '("", tr_1)' in line


def test_a_message_says_when_its_alert_was_raised_whenever_it_is_delivered(db, settings):
    """Delivered an hour late (a channel that retried), it must not read as news: the first
    line, kept when the lines that do not fit are left out, is the moment it was raised."""
    settings.TIME_ZONE = "Asia/Shanghai"
    kinds = {f"kind_{n}": {"count": 1, "ids": [f"tr_{n}"]} for n in range(50)}
    alert_id = raise_digest(AlertEvent.WAITING, kinds)
    Alert.objects.filter(pk=alert_id).update(raised_at="2026-12-07T06:02:10Z")
    alert = Alert.objects.get(pk=alert_id)
    english, chinese = render(alert, "en"), render(alert, "zh-hans")
    assert english.lines[0] == "Raised 2026-12-07 14:02:10 (Asia/Shanghai)."
    assert "2026-12-07 14:02:10 (Asia/Shanghai)" in chinese.lines[0]
    assert chinese.lines[0] != english.lines[0]
    short = english.text(300)
    assert "Raised 2026-12-07 14:02:10" in short and "more lines" in short
