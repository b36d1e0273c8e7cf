"""Delivering recorded alerts: claim a due delivery, make one attempt, record what came of it.

A delivery is claimed in a short transaction that holds the channel's lock (so rate limits
hold across processes), marked ``sending`` with a lease, and its attempt recorded; the
network call runs outside any transaction; the result is recorded in another. Each channel
is drained in its own thread, so a robot that hangs delays no other channel, and stops for
this pass after an error or a throttling answer (at its rate limit, it waits for the next
slot when that is seconds away). A failed attempt is retried after a backoff
(``TENDEROPS_ALERT_RETRY_SECONDS``, doubled each time, at most an hour, and at least the
pause a throttling robot asked for), up to ``TENDEROPS_ALERT_MAX_ATTEMPTS`` attempts; a
configuration error or a refusal is not retried.

Who delivers: the django-q2 task queued when an alert is recorded, the delivery schedule
every minute (retries, and anything a stopped cluster left behind), both draining each
channel from one worker at a time, and, for the stale monitor, the health endpoint (in a
background thread) and the watchdog (in its process), which also retry the stale alert while
the cluster is down.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from runs.alerting.channels import CHANNELS, Channel, Outcome, describe, shorten
from runs.alerting.messages import render
from runs.maintenance.alerts import AlertEvent, configured_channels, raise_alert, resolve_alert
from runs.maintenance.counters import ALERTS_SENT, increment
from runs.maintenance.db import db_now, is_postgresql
from runs.maintenance.heartbeat import MonitorHealth
from runs.models import Alert, AlertAttempt, AlertDelivery

logger = logging.getLogger(__name__)

Status = AlertDelivery.Status
Result = AlertAttempt.Result
OPEN = (Status.PENDING, Status.RETRYING, Status.SENDING)
RETRIED = {Result.ERROR, Result.THROTTLED}
MAX_BACKOFF = timedelta(hours=1)
LEASE_SLACK = timedelta(seconds=30)
MAX_PER_PASS = 100  # deliveries one channel sends in one pass at most
SHORT_WAIT = timedelta(seconds=5)  # a pass waits this long at most for its rate limit
# ... and waits no more once it has run this long: a slow robot that frees a slot every few
# seconds would otherwise hold a cluster worker for minutes (the schedule's next pass goes on).
PASS_SECONDS = 50
DRAIN_LOCK = 74_519_003  # (int4) with the channel: one cluster process drains a channel at a time


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    alert_id: int
    channel: str
    number: int
    left: list[str] | None = None  # mail: whom an earlier attempt left to send to


def enqueue_delivery(alert_id: int) -> None:
    """Ask the cluster to deliver ``alert_id`` now."""
    from django_q.tasks import async_task

    async_task("runs.tasks.deliver_alert_task", alert_id)


def deliver_alert(alert_id: int, *, within: float | None = None) -> list[AlertDelivery]:
    """Deliver what is due of ``alert_id`` (within ``within`` seconds: ``_drain``); return
    its deliveries as they stand after."""
    _deliver(Q(alert_id=alert_id), within=within)
    return deliveries_of(alert_id)


def deliveries_of(alert_id: int) -> list[AlertDelivery]:
    return list(AlertDelivery.objects.filter(alert_id=alert_id).order_by("channel"))


def deliver_due(*, exclusive: bool = False) -> int:
    """Deliver every due delivery (retries included); return how many channels had some.

    ``exclusive`` (the cluster's tasks): each channel drained by one process at a time. A
    task that finds a channel being drained leaves it to that one, which sends what is due,
    and frees its worker: forty alerts to a robot that hangs held both of the cluster's
    workers, and the monitor's ticks waited three minutes."""
    return _deliver(Q(), exclusive=exclusive)


def deliver_from_cluster(alert_id: int) -> list[AlertDelivery]:
    """The task queued when ``alert_id`` was recorded: what is due, this alert's included;
    its deliveries as they stand after."""
    deliver_due(exclusive=True)
    return deliveries_of(alert_id)


def deliver_in_background(scope: Q) -> threading.Thread:
    """Each channel drained by one thread at a time: an uptime check polling the health
    endpoint while a robot hangs does not pile up threads waiting on it."""
    thread = threading.Thread(
        target=_closing(partial(_deliver, exclusive=True)),
        args=(scope,),
        name="alert-delivery",
        daemon=True,
    )
    thread.start()
    return thread


def send_test_alert(requested_by: str, *, within: float | None = None) -> list[AlertDelivery]:
    """A test message to every configured channel, sent from here; each channel's answer.

    ``within``: the seconds a web request may spend on it. Each attempt is cut off at that
    time and a channel's rate limit is not waited for past it; what is left is retried by
    the schedule, as any delivery (a robot that hung for an alert timeout of 45 s kept the
    request past gunicorn's 30 s: a 500, and the delivery left "sending")."""
    from runs.maintenance.alerts import record_test_alert

    return deliver_alert(record_test_alert(requested_by), within=within)


def alert_on_health(health: MonitorHealth, *, source: str, background: bool) -> int | None:
    """From outside the cluster (the health endpoint, the watchdog): raise ``monitor_stale``
    when the monitor is stale (once per cooldown), its recovery when it runs again, and
    deliver it from this process, since a stopped cluster delivers nothing."""
    facts = {
        "source": source,
        "last_run_at": health.last_run_at.isoformat() if health.last_run_at else None,
        "stale_after_seconds": int(health.stale_after.total_seconds()),
    }
    alert_id = None
    if health.healthy:
        alert_id = resolve_alert(AlertEvent.MONITOR_STALE, facts=facts, announce=False)
    elif health.stale:  # not while it is starting: nothing has had a chance to go wrong
        alert_id = raise_alert(AlertEvent.MONITOR_STALE, facts=facts, announce=False)
    scope = _delivered_by_health(health, alert_id)
    if scope is not None:
        if background:
            transaction.on_commit(lambda: deliver_in_background(scope))
        else:
            _deliver(scope, exclusive=True)
    return alert_id


def _delivered_by_health(health: MonitorHealth, alert_id: int | None) -> Q | None:
    """What the health check delivers: the alert it raised, and while the monitor is stale
    the stale alert's retries too (the cluster, which retries, is what has stopped: a robot
    that failed once would never hear of it)."""
    if not configured_channels():
        return None
    if health.stale:
        scope = Q(alert__event=AlertEvent.MONITOR_STALE)
        return scope if AlertDelivery.objects.filter(scope, _due(db_now())).exists() else None
    return None if alert_id is None else Q(alert_id=alert_id)


def _deliver(scope: Q, *, exclusive: bool = False, within: float | None = None) -> int:
    channels = sorted(
        set(AlertDelivery.objects.filter(scope, _due(db_now())).values_list("channel", flat=True))
    )
    drain = partial(_drain_alone if exclusive and is_postgresql() else _drain, within=within)
    if len(channels) == 1 or not is_postgresql():
        # SQLite (the demo) takes one writer at a time: the channels in turn.
        for channel in channels:
            drain(channel, scope)
    elif channels:
        with ThreadPoolExecutor(len(channels), thread_name_prefix="alert-channel") as pool:
            list(pool.map(_closing(drain), channels, [scope] * len(channels)))
    return len(channels)


def _drain_alone(channel: str, scope: Q, *, within: float | None = None) -> None:
    """``_drain``, unless another process drains ``channel``: then nothing (the lock is the
    session's, released with the connection if this one dies)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [DRAIN_LOCK, channel])
        if not cursor.fetchone()[0]:
            return
        try:
            _drain(channel, scope, within=within)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [DRAIN_LOCK, channel])


def _closing(work):
    """``work`` for another thread: errors logged, the thread's connection closed after."""

    def run(*args):
        try:
            return work(*args)
        except Exception:
            logger.exception("alert delivery failed")
        finally:
            connection.close()

    return run


SENDER_STOPPED = "no answer recorded: the sender stopped"


def _due(now: datetime) -> Q:
    return Q(status__in=OPEN, next_attempt_at__lte=now)


def _drain(channel: str, scope: Q, *, within: float | None = None) -> None:
    """Send what is due on ``channel``; ``within``: the seconds the pass may take in all,
    each attempt's timeout cut to what is left (without: the pass stops claiming after
    PASS_SECONDS, and each attempt has the alert timeout)."""
    sender = CHANNELS[channel]
    sent = waits = 0
    ends = time.monotonic() + (PASS_SECONDS if within is None else within)
    cut_at = None if within is None else ends  # a bounded pass cuts its attempts short too
    while sent < MAX_PER_PASS and waits < MAX_PER_PASS:
        if cut_at is not None and time.monotonic() >= cut_at:
            return
        claim = _claim(sender, scope)
        if isinstance(claim, timedelta):  # held back by the channel's limits
            if claim > SHORT_WAIT or time.monotonic() + claim.total_seconds() > ends:
                return  # paused by the robot, or its minute is full: the next pass tries
            # A slot frees within seconds (Feishu's 4 a second, the minute's first attempts
            # about to age out): waiting for it here instead of for the next pass, a minute
            # later, is what keeps a backlog moving at the documented rates.
            time.sleep(max(claim.total_seconds(), 0.05))
            waits += 1
            continue
        if claim is None:
            return
        outcome = _attempt(sender, claim, _attempt_seconds(cut_at))
        _record(claim, outcome)
        sent += 1
        if outcome.result in RETRIED:
            return  # this channel is down or throttled: the next pass tries again


def _claim(sender: Channel, scope: Q) -> Claim | timedelta | None:
    """The next due delivery, claimed; or how long the channel's limits hold it back; or
    None when nothing is due."""
    with transaction.atomic():
        if is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sender.name])
        now = db_now()
        if not sender.configured():
            AlertDelivery.objects.filter(scope, channel=sender.name, status__in=OPEN).update(
                status=Status.FAILED,
                next_attempt_at=None,
                answer="the channel is no longer configured",
                updated_at=now,
            )
            return None
        delivery = _next_due(sender, scope, now)
        if delivery is None:
            return None
        held_back = _held_back(sender, now)
        if held_back is not None:
            return held_back
        delivery.status = Status.SENDING
        delivery.attempts += 1
        lease = timedelta(seconds=settings.TENDEROPS_ALERT_TIMEOUT_SECONDS) + LEASE_SLACK
        delivery.next_attempt_at = now + lease
        delivery.updated_at = now
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        attempt = AlertAttempt.objects.create(
            delivery=delivery,
            channel=sender.name,
            number=delivery.attempts,
            started_at=now,
            result=Result.SENDING,
        )
        return Claim(
            delivery.pk,
            attempt.pk,
            delivery.alert_id,
            sender.name,
            delivery.attempts,
            delivery.recipients_left,
        )


def _next_due(sender: Channel, scope: Q, now: datetime) -> AlertDelivery | None:
    """The next delivery due on the channel, locked; a lost attempt (its sender stopped, its
    lease ran out) recorded as such, and a delivery with no attempt left failed."""
    due = (
        # Only the delivery's row: a scope by the alert's event joins the alert, whose row
        # every channel's claim would lock, and the channels would skip one another.
        AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(scope, _due(now), channel=sender.name)
        .order_by("next_attempt_at", "pk")
    )
    while (delivery := due.first()) is not None:  # a failed one is no longer due
        lost = AlertAttempt.objects.filter(delivery=delivery, result=Result.SENDING).update(
            result=Result.ERROR, finished_at=now, answer=SENDER_STOPPED
        )
        if lost:
            increment(ALERTS_SENT, {"channel": sender.name, "result": Result.ERROR}, lost)
        if delivery.attempts < settings.TENDEROPS_ALERT_MAX_ATTEMPTS:
            return delivery
        delivery.status, delivery.next_attempt_at = Status.FAILED, None
        delivery.answer, delivery.updated_at = SENDER_STOPPED, now
        delivery.save(update_fields=["status", "next_attempt_at", "answer", "updated_at"])
    return None


def _held_back(sender: Channel, now: datetime) -> timedelta | None:
    """How long the channel is held back: paused (a robot said it throttles) or at one of its
    rate limits, until the attempt that filled it ages out. None: free now."""
    recent = AlertAttempt.objects.filter(channel=sender.name)
    paused = (
        recent.filter(started_at__gt=now - MAX_BACKOFF * 2, paused_until__gt=now)
        .order_by("-paused_until")
        .values_list("paused_until", flat=True)
        .first()
    )
    waits = [paused - now] if paused else []
    for seconds, most in sender.rate_limits:
        window = recent.filter(started_at__gt=now - timedelta(seconds=seconds))
        starts = window.order_by("-started_at").values_list("started_at", flat=True)[most - 1 :]
        oldest_that_fills = starts.first()
        if oldest_that_fills is not None:
            waits.append(oldest_that_fills + timedelta(seconds=seconds) - now)
    return max(waits) if waits else None


def _attempt_seconds(ends: float | None) -> float:
    """The alert timeout; in a pass that must end at ``ends``, no more than is left (a
    second at least)."""
    seconds = settings.TENDEROPS_ALERT_TIMEOUT_SECONDS
    return seconds if ends is None else max(min(seconds, ends - time.monotonic()), 1.0)


def _attempt(sender: Channel, claim: Claim, timeout: float) -> Outcome:
    try:
        alert = Alert.objects.get(pk=claim.alert_id)
        return sender.send(alert, render(alert), timeout, left=claim.left)
    except Exception as error:
        logger.exception("sending alert %s to %s failed", claim.alert_id, claim.channel)
        return Outcome(Result.ERROR, shorten(describe(error)))


def _record(claim: Claim, outcome: Outcome) -> None:
    with transaction.atomic():
        now = db_now()
        paused = now + timedelta(seconds=outcome.pause_seconds) if outcome.pause_seconds else None
        AlertAttempt.objects.filter(pk=claim.attempt_id).update(
            result=outcome.result,
            finished_at=now,
            http_status=outcome.http_status,
            answer=outcome.answer,
            paused_until=paused,
        )
        status, next_at = _next_state(claim.number, outcome, now)
        if status != Status.SENT or outcome.partial:
            # Where operators look first (the cluster's journal); secrets are redacted there.
            logger.warning(
                "alert %s to %s, attempt %s: %s (%s)",
                claim.alert_id,
                claim.channel,
                claim.number,
                outcome.answer or outcome.result,
                status,
            )
        deliveries = AlertDelivery.objects.filter(pk=claim.delivery_id)
        if status == Status.SENT:  # delivered, even if taken over meanwhile: never again
            deliveries = deliveries.exclude(status=Status.SENT)
        else:
            deliveries = deliveries.filter(status=Status.SENDING, attempts=claim.number)
        changes = {"status": status, "next_attempt_at": next_at, "answer": outcome.answer}
        if outcome.left:  # the next attempt mails them alone
            changes["recipients_left"] = list(outcome.left)
        deliveries.update(**changes, updated_at=now)
        increment(ALERTS_SENT, {"channel": claim.channel, "result": outcome.result})


def _next_state(number: int, outcome: Outcome, now: datetime) -> tuple[str, datetime | None]:
    if outcome.result == Result.SENT:
        return Status.SENT, None
    if outcome.result == Result.MISCONFIGURED:
        return Status.MISCONFIGURED, None
    if outcome.result not in RETRIED or number >= settings.TENDEROPS_ALERT_MAX_ATTEMPTS:
        return Status.FAILED, None
    backoff = min(
        MAX_BACKOFF, timedelta(seconds=settings.TENDEROPS_ALERT_RETRY_SECONDS * 2 ** (number - 1))
    )
    return Status.RETRYING, now + max(backoff, timedelta(seconds=outcome.pause_seconds))
