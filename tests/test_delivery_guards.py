"""Guards of alerts (recording, telling, delivery) and of late finishes that no other test
pinned down: each test here failed on a mutation of one condition (a manual mutation run over
runs/alerting and runs/maintenance) that the rest of the suite let pass."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models import F, Q

from runs.alerting import delivery as delivery_module
from runs.alerting.channels import CHANNELS, Outcome, Result
from runs.alerting.delivery import Claim, _claim, _record, deliver_alert, deliver_due
from runs.maintenance import AlertEvent, fail_stuck_runs, raise_alert
from runs.maintenance.late_finishes import note_late_finishes
from runs.maintenance.telling import cooldown_end
from runs.models import Actor, AlertAttempt, AlertDelivery, AlertGate, TenderRun
from tests.processes import (
    current_database_url,
    statement_gate,
    wait_until,
    waiting_in_this_database,
)
from tests.receivers import receiver
from tests.test_fleet_crash import stuck_runs

HOOK = "/open-apis/bot/v2/hook/abcd-ef01"
MIN = timedelta(minutes=1)


def test_a_channel_that_fails_is_left_for_the_next_pass(db, settings):
    # Going on would spend every queued alert's attempts on a robot that is down.
    with receiver(lambda r: (500, {"errmsg": "internal"})) as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        for n in range(3):
            raise_alert(AlertEvent.WAITING, f"kind-{n}", announce=False)
        deliver_due()
        assert len(robot.requests) == 1
    attempts = sorted(AlertDelivery.objects.values_list("attempts", flat=True))
    assert attempts == [0, 0, 1]


@pytest.mark.parametrize("state", ["sent", "sending", "failed"])
def test_a_late_error_of_an_attempt_taken_over_changes_nothing(db, settings, state):
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    alert_id = raise_alert(AlertEvent.TEST, announce=False)
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    first = AlertAttempt.objects.create(delivery=delivery, channel="webhook", number=1)
    AlertDelivery.objects.filter(pk=delivery.pk).update(status=state, attempts=2)
    _record(Claim(delivery.pk, first.pk, alert_id, "webhook", 1), Outcome(Result.ERROR, "late"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (state, 2)


def test_a_delivery_in_flight_is_not_claimed_again(db, settings):
    # The health endpoint's thread and the watchdog send too: a second claim is a second message.
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    raise_alert(AlertEvent.TEST, announce=False)
    sender = CHANNELS["webhook"]
    assert isinstance(_claim(sender, Q()), Claim)
    assert _claim(sender, Q()) is None


def test_a_channel_no_longer_configured_keeps_what_it_sent(db, settings):
    with receiver(lambda r: (200, {"code": 0, "msg": "success"})) as robot:
        settings.TENDEROPS_FEISHU_WEBHOOK_URL = robot.url(HOOK)
        (sent,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    waiting = raise_alert(AlertEvent.WAITING, "review", announce=False)
    pending = AlertDelivery.objects.get(alert_id=waiting)
    settings.TENDEROPS_FEISHU_WEBHOOK_URL = ""
    deliver_due()
    sent.refresh_from_db()
    pending.refresh_from_db()
    assert (sent.status, pending.status) == ("sent", "failed")


def test_an_alert_whose_delivery_cannot_be_queued_is_recorded_all_the_same(
    db, settings, monkeypatch, caplog
):
    def broker_down(alert_id: int) -> None:
        raise ConnectionError("the broker is down")

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    monkeypatch.setattr(delivery_module, "enqueue_delivery", broker_down)
    alert_id = raise_alert(AlertEvent.WAITING, "review", {"total": 1})
    assert alert_id is not None
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    assert delivery.status == "pending"  # the delivery schedule sends it
    assert "could not queue the delivery" in caplog.text


def test_failings_in_their_cooldown_wait_for_the_first_of_its_ends(db, settings):
    # Not the last: the kind told longest ago passes its gate first, and brings the rest.
    settings.TENDEROPS_ALERT_COOLDOWN_MINUTES = 30
    for kind in ("review", "docx"):
        raise_alert(AlertEvent.MONITOR_FAILED, kind, announce=False)
    AlertGate.objects.filter(kind="review").update(last_raised_at=F("last_raised_at") - 20 * MIN)
    review = AlertGate.objects.get(kind="review").last_raised_at
    due = cooldown_end(AlertEvent.MONITOR_FAILED, {"review": {}, "docx": {}})
    assert due == review + 30 * MIN


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_late_finish_another_sweep_is_noting_is_left_to_it(project):
    # Two sweeps at once noted (and counted, and alerted) the same late finishes twice.
    ids = stuck_runs(project, 2)
    fail_stuck_runs(actor=Actor.CLI)
    TenderRun.objects.filter(pk__in=ids).update(status="success")  # the workers were alive
    with psycopg.connect(current_database_url()) as other_sweep:
        other_sweep.execute("SELECT 1 FROM tenderops_failed_run FOR UPDATE")
        with connection.cursor() as cursor:  # a sweep that waited would fail, not hang
            cursor.execute("SET lock_timeout = '5s'")
        try:
            assert note_late_finishes() == []
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    assert len(note_late_finishes()) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_channels_retrying_the_stale_alert_do_not_skip_one_another(settings):
    # The health check's scope joins the alert: each channel's claim locked the alert's row
    # too, and a channel whose claim met another's skipped its delivery for that pass.
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.TENDEROPS_WECOM_WEBHOOK_URL = "http://127.0.0.1:9/send?key=k-0005"
    raise_alert(AlertEvent.MONITOR_STALE, announce=False)
    scope = Q(alert__event=AlertEvent.MONITOR_STALE)
    with psycopg.connect(current_database_url()) as webhook_claim:  # the webhook's, in flight
        webhook_claim.execute(
            "SELECT 1 FROM tenderops_alert_delivery AS d JOIN tenderops_alert AS a "
            "ON a.id = d.alert_id WHERE d.channel = 'webhook' FOR UPDATE"
        )
        assert isinstance(_claim(CHANNELS["wecom"], scope), Claim)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_at_a_channels_last_free_slot_send_once(settings):
    # Two processes' passes (the cluster's and a health check's) claim at the same moment: the
    # channel's lock makes the second read the window after the first's attempt, and wait.
    with receiver() as robot:
        settings.TENDEROPS_WECOM_WEBHOOK_URL = robot.url("/send", "key=k-0006")
        for n in range(17):
            raise_alert(AlertEvent.FAILURE_SPIKE, f"kind-{n}", announce=False)
        deliver_due()
        assert len(robot.requests) == 17  # one of the minute's 18 slots left
        raise_alert(AlertEvent.WAITING, "a", announce=False)
        raise_alert(AlertEvent.WAITING, "b", announce=False)
        claims = []

        def claim() -> None:
            try:
                claims.append(_claim(CHANNELS["wecom"], Q()))
            finally:
                connection.close()

        # Both wait: one at the gate before its attempt is written, the other for the
        # channel's lock (or, were there none, at the gate too, having read a free slot).
        with statement_gate("tenderops_alert_attempt", "INSERT", 4646) as gate:
            senders = [threading.Thread(target=claim) for _ in range(2)]
            for sender in senders:
                sender.start()
            wait_until(lambda: waiting_in_this_database(gate) == 2, timeout=60, what="both")
            gate.execute("SELECT pg_advisory_unlock(4646)")
            for sender in senders:
                sender.join(timeout=60)
    assert sorted(type(c).__name__ for c in claims) == ["Claim", "timedelta"]
    assert AlertAttempt.objects.filter(channel="wecom").count() == 18
