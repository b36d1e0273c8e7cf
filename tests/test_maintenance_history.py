"""Retention of tenderops' own history (runs/maintenance/history.py)."""

from datetime import timedelta

from django.db.models import F

from runs.maintenance import RETENTION, fail_stuck_runs, retention_tick
from runs.maintenance.counters import read
from runs.maintenance.history import prune_history
from runs.models import (
    Actor,
    Alert,
    AlertAttempt,
    AlertDelivery,
    FailedRunRecord,
    Heartbeat,
    MaintenanceAction,
)
from runs.models.alerts import AlertChannel, AlertEvent
from runs.vocabulary import DeliveryStatus

DAY = timedelta(days=1)
MIN = timedelta(minutes=1)


def failed_by_cli(make_run, count: int, *, days_ago: int) -> MaintenanceAction:
    """An audited cleanup that failed ``count`` runs, ``days_ago`` days ago."""
    for _ in range(count):
        make_run(started_ago=30 * MIN)
    action_id = fail_stuck_runs(actor=Actor.CLI, timeout_minutes=10).action_id
    MaintenanceAction.objects.filter(pk=action_id).update(
        started_at=F("started_at") - days_ago * DAY
    )
    return MaintenanceAction.objects.get(pk=action_id)


def alert(*, days_ago: int, delivery: DeliveryStatus) -> Alert:
    """An alert raised ``days_ago`` days ago, its e-mail delivery in state ``delivery``,
    tried once."""
    raised = Alert.objects.create(event=AlertEvent.MONITOR_FAILED, facts={"total": 1})
    Alert.objects.filter(pk=raised.pk).update(raised_at=F("raised_at") - days_ago * DAY)
    sent = AlertDelivery.objects.create(
        alert=raised, channel=AlertChannel.EMAIL, status=delivery, attempts=1
    )
    AlertAttempt.objects.create(
        delivery=sent, channel=AlertChannel.EMAIL, number=1, result=AlertAttempt.Result.SENT
    )
    return raised


def test_history_older_than_its_retention_goes_in_batches_and_the_rest_stays(
    db, make_run, settings
):
    settings.TENDEROPS_RETENTION_HISTORY_DAYS = 365
    old_action = failed_by_cli(make_run, 3, days_ago=400)
    new_action = failed_by_cli(make_run, 2, days_ago=300)
    alert(days_ago=400, delivery=DeliveryStatus.SENT)
    undelivered = alert(days_ago=400, delivery=DeliveryStatus.RETRYING)
    new_alert = alert(days_ago=300, delivery=DeliveryStatus.SENT)
    counters = read("tenderops_runs_failed_total")

    result = prune_history(batch_size=2)

    assert (result.records, result.actions, result.alerts) == (3, 1, 1)
    assert set(MaintenanceAction.objects.values_list("pk", flat=True)) == {new_action.pk}
    assert set(FailedRunRecord.objects.values_list("action_id", flat=True)) == {new_action.pk}
    assert FailedRunRecord.objects.count() == 2
    assert not MaintenanceAction.objects.filter(pk=old_action.pk).exists()
    # An alert still being delivered stays, whatever its age; deliveries and attempts go with
    # their alert.
    assert set(Alert.objects.values_list("pk", flat=True)) == {undelivered.pk, new_alert.pk}
    assert set(AlertDelivery.objects.values_list("alert_id", flat=True)) == {
        undelivered.pk,
        new_alert.pk,
    }
    assert AlertAttempt.objects.count() == 2
    assert read("tenderops_runs_failed_total") == counters  # counters never go down
    again = prune_history()
    assert (again.records, again.actions, again.alerts) == (0, 0, 0)


def test_the_daily_retention_prunes_the_history_and_says_so_in_its_heartbeat(db, make_run):
    failed_by_cli(make_run, 1, days_ago=400)
    alert(days_ago=400, delivery=DeliveryStatus.FAILED)
    retention_tick()
    history = Heartbeat.objects.get(name=RETENTION).last_result["history"]
    assert (history["records"], history["actions"], history["alerts"]) == (1, 1, 1)
    assert not MaintenanceAction.objects.filter(kind=MaintenanceAction.Kind.FAIL_STUCK).exists()
    assert not Alert.objects.exists()


def test_a_failing_not_yet_told_keeps_its_audit_whatever_its_age(db, make_run):
    """Its alert counts its records when it is told (after an outage of the alerts, say):
    deleted first, the failing would never be told."""
    untold = failed_by_cli(make_run, 2, days_ago=400)
    MaintenanceAction.objects.filter(pk=untold.pk).update(alert_pending=True)
    told = failed_by_cli(make_run, 1, days_ago=400)
    result = prune_history(days=365)
    assert (result.actions, result.records) == (1, 1)
    assert list(MaintenanceAction.objects.values_list("pk", flat=True)) == [untold.pk]
    assert FailedRunRecord.objects.filter(action=untold).count() == 2
    assert not FailedRunRecord.objects.filter(action=told).exists()
