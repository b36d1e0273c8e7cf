"""Guards of alert recording and delivery that no other test pinned down: each test here
failed on a mutation of one condition (a manual mutation run over runs/alerting and
runs/maintenance) that the rest of the suite let pass."""

import pytest
from django.db.models import Q

from runs.alerting import delivery as delivery_module
from runs.alerting.channels import CHANNELS, Outcome, Result
from runs.alerting.delivery import Claim, _claim, _record, deliver_alert, deliver_due
from runs.maintenance import AlertEvent, raise_alert
from runs.models import AlertAttempt, AlertDelivery
from tests.receivers import receiver

HOOK = "/open-apis/bot/v2/hook/abcd-ef01"


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
