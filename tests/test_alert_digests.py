"""The waiting and late-finish digests: what they count, list and leave to the cooldown."""

import pytest

from runs.maintenance import fail_stuck_runs, late_finish_tick, monitor_tick, observe_active_runs
from runs.maintenance.alerts import AlertEvent, raise_alert
from runs.models import Actor, Alert, TenderRun
from tests.test_maintenance_liveness import (  # its one-minute silence rule, autouse
    MIN,
    one_minute_silence,  # noqa: F401
    silence_for,
)

pytestmark = pytest.mark.postgres


def test_the_waiting_digest_counts_every_run_and_its_longest_silence(make_run, settings):
    """A run requeued waits from its requeueing: the oldest waiting is the longest silence,
    not the earliest queued; the total counts the runs of kinds in their cooldown too."""
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    requeued = make_run(status="pending", started_ago=60 * MIN, kind="review")
    silent = make_run(status="pending", started_ago=50 * MIN, kind="review")
    docx = make_run(status="pending", started_ago=45 * MIN, kind="generate_docx")
    observe_active_runs()
    silence_for(requeued, 40 * MIN)
    silence_for(silent, 50 * MIN)
    silence_for(docx, 45 * MIN)
    raise_alert(AlertEvent.WAITING, "generate_docx", announce=False)  # its cooldown runs
    monitor_tick()
    digest = Alert.objects.filter(event=AlertEvent.WAITING).latest("pk")
    assert digest.facts["total"] == 3
    assert list(digest.facts["kinds"]) == ["review"]
    review = digest.facts["kinds"]["review"]
    assert (review["count"], review["oldest_minutes"]) == (2, 50)
    assert review["ids"] == [requeued.pk, silent.pk]  # queued first, listed first


def test_the_waiting_digest_writes_a_long_wait_as_the_runs_list_does(db):
    """A run queued 400 days ago read "最长已等待 576007 分钟" (the new operator)."""
    from runs.alerting.messages import render
    from runs.maintenance import raise_digest

    kinds = {"review": {"count": 1, "ids": ["tr_1"], "oldest_minutes": 576_007}}
    alert = Alert.objects.get(pk=raise_digest(AlertEvent.WAITING, kinds))
    english = "\n".join(render(alert, "en").lines)
    assert "oldest waiting 400 d 0 h" in english and "576" not in english
    assert "最长已等待 400 天 0 小时" in "\n".join(render(alert, "zh-hans").lines)
    odd = {"review": {"count": 1, "ids": ["tr_1"], "oldest_minutes": "soon"}}
    assert "oldest" not in "\n".join(
        render(Alert(event=AlertEvent.WAITING, facts={"kinds": odd}), "en").lines
    )


def test_the_late_finish_digest_counts_the_kinds_in_their_cooldown_too(make_run, settings):
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    runs = [make_run(started_ago=30 * MIN, kind=kind) for kind in ("review", "review", "risks")]
    fail_stuck_runs(actor=Actor.CLI)
    TenderRun.objects.filter(pk__in=[run.pk for run in runs]).update(status="success")
    raise_alert(AlertEvent.LATE_FINISH, "review", announce=False)  # its cooldown runs
    assert len(late_finish_tick()) == 3
    digest = Alert.objects.filter(event=AlertEvent.LATE_FINISH).latest("pk")
    assert digest.facts["total"] == 3 and list(digest.facts["kinds"]) == ["risks"]


def test_a_late_finish_at_an_impossible_time_suggests_no_timeout(make_run, settings):
    """A finish at 'infinity' suggested a timeout of 5,032,112,769 minutes to every channel;
    one before the run's start suggested 5 minutes, below the timeout it called too short."""
    from django.db import connection

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    endless, backwards, real = (
        make_run(started_ago=30 * MIN, kind=kind) for kind in ("endless", "backwards", "real")
    )
    fail_stuck_runs(actor=Actor.CLI)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tender_runs SET status = 'success', finished_at = CASE id "
            "WHEN %s THEN 'infinity' WHEN %s THEN started_at - interval '5 minutes' "
            "ELSE started_at + interval '40 minutes' END",
            [endless.pk, backwards.pk],
        )
    assert len(late_finish_tick()) == 3
    kinds = Alert.objects.get(event=AlertEvent.LATE_FINISH).facts["kinds"]
    assert {kind: entry["count"] for kind, entry in kinds.items()} == {
        "endless": 1,
        "backwards": 1,
        "real": 1,
    }
    assert "suggested_minutes" not in kinds["endless"]
    assert "suggested_minutes" not in kinds["backwards"]
    assert kinds["real"]["suggested_minutes"] == 48  # 40 minutes and a fifth
