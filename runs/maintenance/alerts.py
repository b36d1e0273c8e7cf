"""Raising alerts: record an event, once per cooldown, for the delivery task to send.

Cheap and safe to call from a monitor tick: one statement on PostgreSQL (the cooldown gate,
the alert and one pending delivery per configured channel), never any network. Delivery is
``runs.alerting``'s job: a django-q2 task is queued to deliver the alert (in the same
transaction with the ORM broker, after the commit with Redis), so a slow or dead webhook
never delays or breaks the caller.

The cooldown (``TENDEROPS_ALERT_COOLDOWN_MINUTES``) is per event and kind: an alert whose
(event, kind) passed the gate within the cooldown is not recorded again. A digest covers
several kinds and leaves out those still in their cooldown. An incident (the monitor stale)
stays open until ``resolve_alert`` raises its recovery, once, and resets its cooldown. So do
the conditions of a kind that hold for a while (runs waiting, stuck in report mode, a failure
spike): ``resolve_cleared`` closes those of the kinds no longer in that condition, in one
``resolved`` alert that names them; their cooldowns run on (a condition that flaps each
minute is told once per cooldown, not twice a minute).

Events and the facts their messages show (``runs.alerting.messages``; any fact may be
missing, a message shows what it has):

| event | how | facts |
|---|---|---|
| ``monitor_failed`` | ``raise_digest`` | ``total``, ``action_id``, ``rule``; per kind ``count``, ``ids``, ``timeout_minutes`` |
| ``stuck_not_failed`` | ``raise_digest`` | ``total``, ``rule``; per kind ``count``, ``ids``, ``timeout_minutes`` |
| ``waiting`` | ``raise_digest`` | ``total``, ``threshold_minutes``; per kind ``count``, ``ids``, ``oldest_minutes`` |
| ``late_finish`` | ``raise_digest`` | ``total``; per kind ``count``, ``ids``, ``timeout_minutes``, ``suggested_minutes`` |
| ``failure_spike`` | ``raise_digest`` | per kind ``count`` (failed), ``hour_finished``, ``hour_rate``, ``week_rate``, ``top_error``; one kind's also flat (``hour_failed``, ...) |
| ``monitor_stale`` | ``raise_alert`` | ``last_run_at``, ``stale_after_seconds``, ``source`` |
| ``monitor_recovered`` | ``resolve_alert(MONITOR_STALE)`` | ``last_run_at``, ``source`` |
| ``resolved`` | ``resolve_cleared`` | ``resolves`` (the event whose condition cleared); ``kinds``; ``report_mode_ended`` (report mode's, closed by the failing monitor) |
| ``test`` | ``record_test_alert`` | ``requested_by`` |
"""  # noqa: E501

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from runs.limits import MAX_KIND_LENGTH
from runs.maintenance.db import db_now, is_postgresql
from runs.models import Alert, AlertChannel, AlertDelivery, AlertEvent, AlertGate
from runs.vocabulary import DeliveryStatus

logger = logging.getLogger(__name__)

__all__ = [
    "AlertEvent",
    "configured_channels",
    "raise_alert",
    "raise_digest",
    "record_test_alert",
    "resolve_alert",
    "resolve_cleared",
]

# Which setting turns each channel on (DingTalk's and Feishu's secrets are optional).
CHANNEL_SETTINGS = {
    AlertChannel.EMAIL: "TENDEROPS_ALERT_EMAILS",
    AlertChannel.WEBHOOK: "TENDEROPS_ALERT_WEBHOOK_URL",
    AlertChannel.WECOM: "TENDEROPS_WECOM_WEBHOOK_URL",
    AlertChannel.DINGTALK: "TENDEROPS_DINGTALK_WEBHOOK_URL",
    AlertChannel.FEISHU: "TENDEROPS_FEISHU_WEBHOOK_URL",
}
# Incidents stay open until resolved; resolving raises the recovery event.
RECOVERIES = {AlertEvent.MONITOR_STALE: AlertEvent.MONITOR_RECOVERED}
# Conditions of a kind that hold while they last: each is an incident per kind, closed by
# ``resolve_cleared`` once the kind is out of it.
CONDITIONS = (AlertEvent.WAITING, AlertEvent.STUCK_NOT_FAILED, AlertEvent.FAILURE_SPIKE)

GATE = AlertGate._meta.db_table
ALERT = Alert._meta.db_table
DELIVERY = AlertDelivery._meta.db_table
# The pending deliveries of the alert the statement before inserted, one per channel.
QUEUE_DELIVERIES = f"""
    queued AS (
        INSERT INTO {DELIVERY} (alert_id, channel, status, attempts, next_attempt_at, answer,
                                updated_at)
        SELECT alert.id, channel, '{DeliveryStatus.PENDING.value}', 0, statement_timestamp(), '',
               statement_timestamp()
        FROM alert CROSS JOIN unnest(%s::text[]) AS channel
    )
"""


def gate_kind(kind: str) -> str:
    """The part of a kind its cooldown is kept under (the gate's key is a btree entry, which
    a kind of a thousand random CJK characters overflowed, failing every alert of it)."""
    return kind[:MAX_KIND_LENGTH]


def gate_kinds(kinds: Iterable[str]) -> list[str]:
    """The cooldowns ``kinds`` fall under, each once (two kinds may share one)."""
    return list(dict.fromkeys(gate_kind(kind) for kind in kinds))


def configured_channels() -> list[str]:
    return [channel for channel, name in CHANNEL_SETTINGS.items() if getattr(settings, name)]


def raise_alert(
    event: AlertEvent,
    kind: str = "",
    facts: Mapping[str, Any] | None = None,
    *,
    announce: bool = True,
) -> int | None:
    """Record ``event`` (for ``kind``, or none) unless it passed within the cooldown; return
    the new alert's id, or None. ``announce``: ask the cluster to deliver it after commit."""
    return _raise(event, {kind: {}}, facts or {}, digest=False, announce=announce)


def raise_digest(
    event: AlertEvent,
    by_kind: Mapping[str, Mapping[str, Any]],
    facts: Mapping[str, Any] | None = None,
    *,
    announce: bool = True,
) -> int | None:
    """One alert for several kinds: ``facts`` plus ``facts["kinds"]``, the entries of
    ``by_kind`` whose (event, kind) is out of its cooldown; None if every kind is in it."""
    if not by_kind:
        return None
    return _raise(event, by_kind, facts or {}, digest=True, announce=announce)


def open_incident_sql(event: AlertEvent, kind: str | None = "") -> tuple[str, tuple]:
    """SQL that finds a row while the incident of (``event``, ``kind``) is open (of any
    kind: ``kind=None``): a caller that asks it first resolves only what there is to."""
    if kind is None:
        return f"SELECT 1 FROM {GATE} WHERE event = %s AND open", (event,)
    return (
        f"SELECT 1 FROM {GATE} WHERE event = %s AND kind = %s AND open",
        (event, gate_kind(kind)),
    )


def resolve_alert(
    event: AlertEvent,
    kind: str = "",
    facts: Mapping[str, Any] | None = None,
    *,
    announce: bool = True,
) -> int | None:
    """Close the open incident of (``event``, ``kind``), if any: raise its recovery (once,
    however many callers resolve it at the same time) and reset its cooldown."""
    recovery = RECOVERIES[event]
    channels = configured_channels()
    with _statement_transaction():
        if is_postgresql():
            alert_id = _fetch_id(
                f"""
                WITH resolved AS (
                    DELETE FROM {GATE} WHERE event = %s AND kind = %s AND open RETURNING kind
                ),
                alert AS (
                    INSERT INTO {ALERT} (event, kind, facts, raised_at)
                    SELECT %s, kind, %s::jsonb, statement_timestamp() FROM resolved
                    RETURNING id
                ),{QUEUE_DELIVERIES}
                SELECT id FROM alert
                """,
                [event, gate_kind(kind), recovery, _json(facts or {}), channels],
            )
        else:
            deleted, _by_model = AlertGate.objects.filter(
                event=event, kind=gate_kind(kind), open=True
            ).delete()
            alert_id = _insert(recovery, kind, dict(facts or {}), channels) if deleted else None
        return _announced(alert_id, announce and bool(channels))


def resolve_cleared(
    event: AlertEvent,
    still: Iterable[str] = (),
    *,
    only: Iterable[str] | None = None,
    facts: Mapping[str, Any] | None = None,
    announce: bool = True,
) -> int | None:
    """Close the open incidents of condition ``event`` whose kind is not in ``still`` (the
    kinds in that condition now; with ``only``, of those kinds only): one ``resolved`` alert
    names them, once however many callers resolve at the same time. Their cooldowns run
    on: a condition that comes and goes is told at most once per cooldown each way."""
    if event not in CONDITIONS:
        raise ValueError(f"{event} is not a condition that clears")
    channels = configured_channels()
    recorded = {**(facts or {}), "resolves": str(event)}
    limited = None if only is None else gate_kinds(only)
    with _statement_transaction():
        if is_postgresql():
            alert_id = _fetch_id(
                f"""
                WITH resolved AS (
                    UPDATE {GATE} SET open = false
                    WHERE event = %s AND open AND kind <> ALL(%s::text[])
                      AND (%s::text[] IS NULL OR kind = ANY(%s::text[]))
                    RETURNING kind
                ),
                alert AS (
                    INSERT INTO {ALERT} (event, kind, facts, raised_at)
                    SELECT %s, CASE WHEN count(*) = 1 THEN min(kind) ELSE '' END,
                           %s::jsonb || jsonb_build_object(
                               'kinds', jsonb_object_agg(kind, '{{}}'::jsonb)),
                           statement_timestamp()
                    FROM resolved HAVING count(*) > 0
                    RETURNING id
                ),{QUEUE_DELIVERIES}
                SELECT id FROM alert
                """,
                [
                    event,
                    gate_kinds(still),
                    limited,
                    limited,
                    AlertEvent.RESOLVED,
                    _json(recorded),
                    channels,
                ],
            )
        else:
            alert_id = _resolve_cleared_portable(
                event, gate_kinds(still), limited, recorded, channels
            )
        return _announced(alert_id, announce and bool(channels))


def _resolve_cleared_portable(
    event: AlertEvent,
    still: list[str],
    only: list[str] | None,
    facts: dict[str, Any],
    channels: Sequence[str],
) -> int | None:
    cleared = AlertGate.objects.filter(event=event, open=True).exclude(kind__in=still)
    if only is not None:
        cleared = cleared.filter(kind__in=only)
    kinds = sorted(cleared.values_list("kind", flat=True))
    if not kinds or not cleared.filter(kind__in=kinds).update(open=False):
        return None
    facts = {**facts, "kinds": {kind: {} for kind in kinds}}
    return _insert(AlertEvent.RESOLVED, kinds[0] if len(kinds) == 1 else "", facts, channels)


def record_test_alert(requested_by: str, *, announce: bool = False) -> int:
    """A test message to every configured channel, outside any cooldown."""
    with transaction.atomic():
        alert_id = _insert(
            AlertEvent.TEST, "", {"requested_by": requested_by}, configured_channels()
        )
        return _announced(alert_id, announce)


def _raise(
    event: AlertEvent,
    by_kind: Mapping[str, Mapping[str, Any]],
    facts: Mapping[str, Any],
    *,
    digest: bool,
    announce: bool,
) -> int | None:
    channels = configured_channels()
    incident = event in RECOVERIES or event in CONDITIONS
    cooldown = settings.TENDEROPS_ALERT_COOLDOWN_MINUTES
    with _statement_transaction():
        if is_postgresql():
            alert_id = _fetch_id(
                f"""
                WITH gate AS (
                    INSERT INTO {GATE} (event, kind, last_raised_at, open)
                    SELECT %s, kind, statement_timestamp(), %s FROM unnest(%s::text[]) AS kind
                    ON CONFLICT (event, kind) DO UPDATE
                    SET last_raised_at = excluded.last_raised_at, open = excluded.open
                    WHERE {GATE}.last_raised_at
                          <= excluded.last_raised_at - make_interval(mins => %s)
                    RETURNING kind
                ),
                alert AS (
                    INSERT INTO {ALERT} (event, kind, facts, raised_at)
                    SELECT %s, CASE WHEN count(*) = 1 THEN min(kind) ELSE '' END,
                           %s::jsonb || CASE WHEN %s THEN jsonb_build_object('kinds', (
                               SELECT jsonb_object_agg(key, value) FROM jsonb_each(%s::jsonb)
                               WHERE left(key, {MAX_KIND_LENGTH}) IN (SELECT kind FROM gate)))
                           ELSE '{{}}'::jsonb END,
                           statement_timestamp()
                    FROM gate HAVING count(*) > 0
                    RETURNING id
                ),{QUEUE_DELIVERIES}
                SELECT id FROM alert
                """,
                [
                    event,
                    incident,
                    gate_kinds(by_kind),
                    cooldown,
                    event,
                    _json(facts),
                    digest,
                    _json(by_kind),
                    channels,
                ],
            )
        else:
            alert_id = _raise_portable(event, by_kind, facts, digest, incident, channels)
        return _announced(alert_id, announce and bool(channels))


def _raise_portable(
    event: AlertEvent,
    by_kind: Mapping[str, Mapping[str, Any]],
    facts: Mapping[str, Any],
    digest: bool,
    incident: bool,
    channels: Sequence[str],
) -> int | None:
    """Elsewhere (the SQLite demo): the same, in a transaction that holds SQLite's write lock
    from its first statement on (see settings)."""
    now = db_now()
    cutoff = now - timedelta(minutes=settings.TENDEROPS_ALERT_COOLDOWN_MINUTES)
    passed = []
    for kind in gate_kinds(by_kind):
        updated = AlertGate.objects.filter(
            event=event, kind=kind, last_raised_at__lte=cutoff
        ).update(last_raised_at=now, open=incident)
        if updated or not AlertGate.objects.filter(event=event, kind=kind).exists():
            if not updated:
                AlertGate.objects.create(event=event, kind=kind, last_raised_at=now, open=incident)
            passed.append(kind)
    if not passed:
        return None
    recorded = dict(facts)
    if digest:
        recorded["kinds"] = {k: by_kind[k] for k in sorted(by_kind) if gate_kind(k) in passed}
    return _insert(event, passed[0] if len(passed) == 1 else "", recorded, channels)


def _insert(event: str, kind: str, facts: dict[str, Any], channels: Sequence[str]) -> int:
    alert = Alert.objects.create(event=event, kind=kind, facts=json.loads(_json(facts)))
    now = db_now()
    AlertDelivery.objects.bulk_create(
        AlertDelivery(
            alert=alert,
            channel=channel,
            status=AlertDelivery.Status.PENDING,
            next_attempt_at=now,
        )
        for channel in channels
    )
    return alert.pk


def _statement_transaction():
    """On PostgreSQL the one statement is atomic by itself and joins the caller's transaction
    if there is one (no savepoint, no commit of its own); the portable path needs one."""
    return nullcontext() if is_postgresql() else transaction.atomic()


def _fetch_id(sql: str, params: list[Any]) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)


def _announced(alert_id: int | None, announce: bool) -> int | None:
    """Queue the alert's delivery. With the ORM broker the queued task is a row in the
    caller's transaction (a tick's): it commits with the alert, and costs one INSERT. A Redis
    broker is told after the commit (its worker must find the alert)."""
    if alert_id is not None and announce:
        if "orm" in settings.Q_CLUSTER:
            _announce(alert_id)  # in the caller's transaction, or in one of its own
        else:
            transaction.on_commit(partial(_announce, alert_id))
    return alert_id


def _announce(alert_id: int) -> None:
    # Imported here: the routines sit below the delivery package, which imports them.
    from runs.alerting.delivery import enqueue_delivery

    try:
        with transaction.atomic():  # a savepoint: a failed enqueue leaves the alert recorded
            enqueue_delivery(alert_id)
    except Exception:
        # The alert stays recorded with its deliveries pending: the delivery schedule sends it.
        logger.exception("could not queue the delivery of alert %s", alert_id)
