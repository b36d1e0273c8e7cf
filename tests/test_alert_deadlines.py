"""Each alert attempt within its deadline, and a lost one taken over once: robots and mail
servers that hang or trickle their answers (real local servers), leases that run out, a
success that arrives after a take-over."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runs.alerting.delivery import deliver_alert, deliver_due
from runs.maintenance import AlertEvent, raise_alert
from runs.models import AlertAttempt, AlertDelivery
from tests.receivers import receiver, send_alert_mail_to


def test_a_hanging_webhook_is_cut_off_at_the_timeout(db, settings):
    settings.TENDEROPS_ALERT_TIMEOUT_SECONDS = 1
    with receiver(hang_seconds=30) as robot:  # it would answer 200 after 30 s
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
    # Cut off: had the attempt waited for the answer, it would have been sent.
    assert (delivery.status, delivery.answer) == ("retrying", "timed out")


def trickle(write: Callable[[], object], times: int, seen: dict) -> None:
    """A slow server: ``write`` ``times`` times, half a second apart, until the client hangs
    up; ``seen`` counts the writes and says when it stopped."""
    try:
        for _ in range(times):
            write()
            seen["sent"] += 1
            time.sleep(0.5)  # the slow server itself, not a synchronisation
    except OSError:
        pass  # the client hung up
    finally:
        seen["stopped"].set()


@contextmanager
def trickling_robot(total_bytes: int = 100) -> Iterator[tuple[str, dict]]:
    """Answers 200 at once, then its body a byte every half second: a read timeout never
    fires, and the answer would take 50 seconds."""
    seen: dict = {"sent": 0, "stopped": threading.Event()}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(total_bytes))
            self.end_headers()
            trickle(lambda: (self.wfile.write(b" "), self.wfile.flush()), total_bytes, seen)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_trickled_past_the_timeout_is_cut_off_whole(db, settings):
    """The timeout bounds the whole exchange, not each read: an attempt that outlived its
    lease was claimed again, and the alert posted twice."""
    settings.TENDEROPS_ALERT_TIMEOUT_SECONDS = 1
    with trickling_robot() as (url, seen):
        settings.TENDEROPS_ALERT_WEBHOOK_URL = url
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        assert seen["stopped"].wait(60), "the robot never saw the client hang up"
    assert (delivery.status, delivery.answer) == ("retrying", "timed out")
    assert seen["sent"] < 100


@contextmanager
def trickling_mail_server(lines: int = 100) -> Iterator[tuple[int, dict]]:
    """Greets with a continued 220 line every half second: a read timeout never fires, and
    the greeting would take 50 seconds."""
    seen: dict = {"sent": 0, "stopped": threading.Event()}
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        client, _ = listener.accept()
        with client:
            trickle(lambda: client.sendall(b"220-still greeting\r\n"), lines, seen)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        listener.close()


def test_a_mail_server_trickling_past_the_timeout_is_cut_off(db, settings):
    """Mail had a timeout per read only: one attempt ran for minutes, past its lease, was
    taken over and mailed again, and held both cluster workers (found by the attacker)."""
    settings.TENDEROPS_ALERT_TIMEOUT_SECONDS = 1
    settings.TENDEROPS_ALERT_EMAILS = ["ops@example.invalid"]
    with trickling_mail_server() as (port, seen):
        send_alert_mail_to(settings, port)
        (delivery,) = deliver_alert(raise_alert(AlertEvent.TEST, announce=False))
        assert seen["stopped"].wait(60), "the server never saw the client hang up"
    assert (delivery.status, delivery.answer) == ("retrying", f"127.0.0.1:{port}: timed out")
    assert seen["sent"] < 100


def lost_attempt(number: int) -> AlertDelivery:
    """A test alert's delivery whose sender claimed attempt ``number`` and died before
    recording anything."""
    delivery = AlertDelivery.objects.get(alert_id=raise_alert(AlertEvent.TEST, announce=False))
    AlertDelivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=number)
    AlertAttempt.objects.create(
        delivery=delivery, channel="webhook", number=number, result="sending"
    )
    return delivery


def test_a_lost_attempt_is_taken_over_after_its_lease(db, settings):
    with receiver() as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        delivery = lost_attempt(1)
        deliver_due()
        assert AlertDelivery.objects.get(pk=delivery.pk).status == "sent"
    assert list(AlertAttempt.objects.order_by("number").values_list("number", "result")) == [
        (1, "error"),
        (2, "sent"),
    ]


def test_a_lost_last_attempt_is_not_taken_over(db, settings):
    """Taking over a delivery whose last attempt's sender stopped made a sixth attempt, and
    a seventh (found by the attacker): none is left, it fails."""
    settings.TENDEROPS_ALERT_MAX_ATTEMPTS = 2
    with receiver() as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        delivery = lost_attempt(2)
        deliver_due()
        assert robot.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.answer) == (
        "failed",
        "no answer recorded: the sender stopped",
    )


def test_a_success_after_a_take_over_still_counts(db, settings):
    """The first sender's success came after its lease: recorded on its attempt only, so the
    delivery was sent again and again (found by the attacker)."""
    from runs.alerting.channels import Outcome, Result
    from runs.alerting.delivery import Claim, _record

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    alert_id = raise_alert(AlertEvent.TEST, announce=False)
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    first = AlertAttempt.objects.create(
        delivery=delivery, channel="webhook", number=1, result="error"
    )
    # Taken over: a second attempt is in flight.
    AlertDelivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=2)
    late = Claim(delivery.pk, first.pk, alert_id, "webhook", 1)
    _record(late, Outcome(Result.SENT, "accepted"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("sent", None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_hanging_robot_holds_one_cluster_worker_not_every_one(settings):
    """Each alert queues its own delivery task: forty alerts to a robot that hangs held both
    of the cluster's workers, and the monitor's ticks waited three minutes. A channel is
    drained by one worker at a time; another finds it taken and is free at once."""
    from django.db import connection

    from runs.tasks import deliver_alert_task

    settings.TENDEROPS_ALERT_TIMEOUT_SECONDS = 30
    with receiver(hang_seconds=60) as robot:
        settings.TENDEROPS_ALERT_WEBHOOK_URL = robot.url()
        first, second = (raise_alert(AlertEvent.TEST, kind, announce=False) for kind in "ab")

        def cluster_worker() -> None:
            try:
                deliver_alert_task(first)
            finally:
                connection.close()

        worker = threading.Thread(target=cluster_worker)
        worker.start()
        robot.wait_for(1, timeout=60)  # the first worker is sending, and waits for the robot
        assert deliver_alert_task(second) == {"webhook": "pending"}  # another worker: free
        assert len(robot.requests) == 1
        robot.released.set()
        worker.join(timeout=120)
    # The first worker sent the second alert too, once the robot answered.
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}
    assert len(robot.requests) == 2
