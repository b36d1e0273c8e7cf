"""Conditions of a kind that clear (runs waiting, stuck in report mode, a failure spike): the
first alert opens an incident per kind, and the first check that finds a kind out of it raises
one ``resolved`` alert naming it (the product's contract: alerts "and each recovery"); its
cooldown runs on, so a condition that comes and goes is told once per cooldown each way."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from runs.alerting.messages import render
from runs.maintenance import (
    AlertEvent,
    check_failure_spikes,
    db_now,
    monitor_tick,
    raise_digest,
)
from runs.maintenance.alerts import resolve_cleared
from runs.models import Alert, AlertDelivery, AlertGate, TenderRun
from tests.test_alert_recording import spike_runs

MIN = timedelta(minutes=1)


def events() -> list[tuple[str, str, list[str]]]:
    """Every alert so far: (event, what a ``resolved`` resolves, the kinds it names)."""
    return [
        (alert.event, alert.facts.get("resolves", ""), sorted(alert.facts.get("kinds") or []))
        for alert in Alert.objects.order_by("pk")
    ]


def test_waiting_runs_picked_up_are_resolved_once_per_kind(make_run, settings):
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    review = make_run(status="pending", started_ago=45 * MIN, kind="review", run_type="review")
    docx = make_run(status="pending", started_ago=50 * MIN, kind="docx", run_type="docx")
    monitor_tick()
    assert events() == [("waiting", "", ["docx", "review"])]
    TenderRun.objects.filter(pk=review.pk).update(status="running")  # a worker took it
    monitor_tick()
    monitor_tick()  # resolved once
    assert events()[1:] == [("resolved", "waiting", ["review"])]
    TenderRun.objects.filter(pk=docx.pk).update(status="failed")
    monitor_tick()
    assert events()[2:] == [("resolved", "waiting", ["docx"])]
    assert AlertDelivery.objects.filter(alert__event="resolved").count() == 2  # one channel
    # Waiting again within the cooldown: nothing new, either way (no flapping messages).
    again = make_run(status="pending", started_ago=40 * MIN, kind="review", run_type="review")
    monitor_tick()
    TenderRun.objects.filter(pk=again.pk).update(status="running")
    monitor_tick()
    assert len(events()) == 3
    # Past the cooldown, a run waiting anew is told, and its pick-up again.
    AlertGate.objects.filter(event="waiting").update(last_raised_at=F("last_raised_at") - 31 * MIN)
    anew = make_run(status="pending", started_ago=40 * MIN, kind="review", run_type="review")
    monitor_tick()
    assert events()[3:] == [("waiting", "", ["review"])]
    TenderRun.objects.filter(pk=anew.pk).update(status="running")
    monitor_tick()
    assert events()[4:] == [("resolved", "waiting", ["review"])]  # its second incident closes


@pytest.mark.postgres  # the questions ride in the observation's statement there only
def test_a_quiet_tick_without_an_open_incident_asks_nothing_more(make_run):
    """The quiet tick stays one statement: whether an incident is open is asked there."""
    monitor_tick()
    with CaptureQueriesContext(connection) as captured:
        monitor_tick()
    assert len([q for q in captured if "tenderops_alert" in q["sql"]]) == 1  # the question
    assert not Alert.objects.exists()


def test_stuck_runs_in_report_mode_are_resolved_once_gone(make_run, settings):
    settings.TENDEROPS_MONITOR_MODE = "report"
    stuck = make_run(started_ago=30 * MIN)
    monitor_tick()
    monitor_tick()  # still stuck: nothing new within the cooldown
    assert events() == [("stuck_not_failed", "", ["extract_project_info"])]
    TenderRun.objects.filter(pk=stuck.pk).update(status="success")
    monitor_tick()
    monitor_tick()
    assert events()[1:] == [("resolved", "stuck_not_failed", ["extract_project_info"])]


def test_a_failure_spike_over_is_resolved(make_run, settings):
    settings.TENDEROPS_SPIKE_MIN_FAILURES = 5
    spike_runs(make_run, "review", week=(50, 1), hour=(8, 6))
    assert len(check_failure_spikes()) == 1
    facts = Alert.objects.get().facts  # one kind: its figures flat too, as webhooks read them
    assert (
        (facts["hour_failed"], facts["hour_rate"])
        == (6, 0.75)
        == (
            facts["kinds"]["review"]["count"],
            facts["kinds"]["review"]["hour_rate"],
        )
    )
    # Fewer failures than the minimum, at the same rate: still a spike, not a recovery.
    hour = TenderRun.objects.filter(kind="review", started_at__gt=db_now() - 30 * MIN)
    two = list(hour.filter(status="failed").values_list("pk", flat=True)[:2])
    TenderRun.objects.filter(pk__in=two).delete()  # 4 of 6 failed: below the minimum of 5
    assert check_failure_spikes() == []
    TenderRun.objects.filter(kind="review", status="failed").update(status="success")
    assert len(check_failure_spikes()) == 1  # the resolution
    assert check_failure_spikes() == []
    assert events() == [
        ("failure_spike", "", ["review"]),  # a digest, of one kind
        ("resolved", "failure_spike", ["review"]),
    ]


def test_a_kind_whose_runs_stop_finishing_is_not_called_recovered(make_run, settings):
    settings.TENDEROPS_SPIKE_MIN_FAILURES = 5
    spike_runs(make_run, "review", week=(50, 1), hour=(8, 6))
    check_failure_spikes()
    TenderRun.objects.filter(kind="review", started_at__gt=db_now() - 30 * MIN).delete()
    assert check_failure_spikes() == []  # nothing finished in the hour: no news
    assert [event for event, _r, _k in events()] == ["failure_spike"]


def test_report_mode_incidents_close_once_the_monitor_fails_the_runs(make_run, settings):
    settings.TENDEROPS_MONITOR_MODE = "report"
    make_run(started_ago=30 * MIN)
    monitor_tick()
    settings.TENDEROPS_MONITOR_MODE = "fail"
    monitor_tick()
    monitor_tick()
    assert [(event, resolves) for event, resolves, _k in events()] == [
        ("stuck_not_failed", ""),
        ("monitor_failed", ""),
        ("resolved", "stuck_not_failed"),
    ]
    # Not "no run is stuck any more" beside "the monitor failed 1 stuck run".
    message = render(Alert.objects.get(event="resolved"), "en")
    assert "report mode has ended, the monitor fails stuck runs" in message.title
    assert "audit=any" in message.link and "no run is stuck" not in message.title


@pytest.mark.parametrize(
    ("resolves", "english", "chinese"),
    [
        (AlertEvent.WAITING, "no run waits too long any more: docx, review", "排队"),
        (AlertEvent.FAILURE_SPIKE, "failing no more than usual again: docx, review", "失败"),
        (AlertEvent.STUCK_NOT_FAILED, "no run is stuck any more (report mode)", "卡住"),
    ],
)
def test_a_resolution_reads_in_both_languages(db, resolves, english, chinese):
    raise_digest(resolves, {"review": {"count": 1}, "docx": {"count": 2}})
    alert = Alert.objects.get(pk=resolve_cleared(resolves, ()))
    assert english in render(alert, "en").title
    message = render(alert, "zh-hans")
    assert chinese in message.title and "docx" in message.title
    assert message.severity == "resolved" and message.link
    assert resolve_cleared(resolves, ()) is None  # once


def test_a_resolution_of_a_run_without_a_kind_names_it_as_the_pages_do(db):
    raise_digest(AlertEvent.WAITING, {"": {"count": 1}, "review": {"count": 1}})
    alert = Alert.objects.get(pk=resolve_cleared(AlertEvent.WAITING, ()))
    assert render(alert, "en").title.endswith(": –, review")
    assert "：–、review" in render(alert, "zh-hans").title


def test_only_conditions_clear(db):
    with pytest.raises(ValueError, match="not a condition"):
        resolve_cleared(AlertEvent.MONITOR_FAILED, ())


def test_a_resolution_of_many_kinds_says_how_many_it_leaves_out(db):
    kinds = {f"kind_{n:02d}": {"count": 1} for n in range(25)}
    raise_digest(AlertEvent.WAITING, kinds)
    title = render(Alert.objects.get(pk=resolve_cleared(AlertEvent.WAITING)), "en").title
    assert "kind_09 and 15 more" in title and "kind_10" not in title


def test_a_spike_shares_its_cooldown_key_and_stays_open_while_its_twin_recovers(make_run, settings):
    """Two kinds alike in their first 200 characters share one cooldown (gate_kind): one
    recovering must not resolve the other's live spike."""
    settings.TENDEROPS_SPIKE_MIN_FAILURES = 5
    stem = "k" * 200
    spike_runs(make_run, f"{stem}-a", week=(50, 1), hour=(8, 6))
    spike_runs(make_run, f"{stem}-b", week=(50, 1), hour=(8, 6))
    check_failure_spikes()
    TenderRun.objects.filter(kind=f"{stem}-b", status="failed").update(status="success")
    check_failure_spikes()
    assert "resolved" not in [event for event, _r, _k in events()]
