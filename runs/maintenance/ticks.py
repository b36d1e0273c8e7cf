"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat.

With the monitor's failing statement, the tick records what it tells people: a digest of the
runs it failed (or, in report mode, would have failed), the runs waiting too long, and the
recovery of a stale monitor. Recording never uses the network and never breaks the tick: an
error there is logged, the runs stay failed.
"""

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from runs.maintenance.alerts import (
    AlertEvent,
    open_incident_sql,
    raise_digest,
    resolve_alert,
    resolve_cleared,
)
from runs.maintenance.counters import LATE_FINISHES, increment
from runs.maintenance.db import aware, compiled, db_now, fetch_compiled, is_postgresql
from runs.maintenance.failing import CleanupResult, fail_stuck_runs
from runs.maintenance.heartbeat import MONITOR, RETENTION, beat
from runs.maintenance.history import prune_history
from runs.maintenance.liveness import note_late_finishes, vacuum_observations, waiting_runs
from runs.maintenance.policy import StuckPolicy
from runs.maintenance.reporting import report_stuck_runs
from runs.maintenance.retention import PruneResult, prune_runs
from runs.maintenance.stats import suggested_timeout
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import FailReason, MonitorMode

logger = logging.getLogger(__name__)

# A digest lists at most this many run ids per kind (oldest first).
DIGEST_IDS = 5


def monitor_tick() -> CleanupResult:
    """One run of the stuck-run monitor, as the schedule does it, with its heartbeat in the
    same transaction as its failing (on PostgreSQL, the same statement; a fleet-wide crash
    is failed in several such batches, each its own short transaction). In report mode it
    fails nothing and records what it would have failed. What it tells people is recorded
    after, never inside a batch's transaction (so the runs of a tick stopped in between are
    told by the next one); a stale monitor's recovery last."""
    if settings.TENDEROPS_MONITOR_MODE == MonitorMode.REPORT:
        result = report_stuck_runs(heartbeat=MONITOR)
        event = AlertEvent.STUCK_NOT_FAILED
    else:
        # Asked in the observation's statement: a quiet tick then skips these queries (about
        # 1.2 ms of it at 10 M). An answer missing (not asked) means "look".
        questions = {
            "waiting": _waiting_sql(),
            "waiting_open": open_incident_sql(AlertEvent.WAITING, kind=None),
            # Left open by report mode: failing the runs ends them.
            "report_open": open_incident_sql(AlertEvent.STUCK_NOT_FAILED, kind=None),
            "stale": open_incident_sql(AlertEvent.MONITOR_STALE),
            "untold": compiled("tick-untold", _untold_actions),
        }
        result = fail_stuck_runs(
            actor=Actor.SCHEDULE, heartbeat=MONITOR, questions=questions, alert=True
        )
        event = AlertEvent.MONITOR_FAILED
    if event == AlertEvent.STUCK_NOT_FAILED and result.stuck_runs:
        _safely(lambda: raise_digest(event, *failed_digest(result)))
    if result.action_ids or result.answers.get("untold", True):
        _safely(lambda: tell_failed(result))
    if event == AlertEvent.STUCK_NOT_FAILED:
        stuck_kinds = set(result.counts_by_kind)  # all of them, listed or not
        _safely(lambda: resolve_cleared(event, stuck_kinds))
    elif result.answers.get("report_open", True):
        _safely(lambda: resolve_cleared(AlertEvent.STUCK_NOT_FAILED))
    if result.answers.get("waiting", True) or result.answers.get("waiting_open", True):
        _safely(_raise_waiting)
    if result.answers.get("stale", True):
        _safely(lambda: resolve_alert(AlertEvent.MONITOR_STALE, facts={"source": "monitor"}))
    return result


def _safely(record: Callable[[], object]) -> None:
    """Record an alert without ever breaking the tick: inside a transaction behind a
    savepoint, else as the one statement it is."""
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            record()
    except Exception:
        logger.exception("the monitor tick could not record its alert")


def tell_failed(result: CleanupResult) -> None:
    """Raise the ``monitor_failed`` digest of the runs this tick failed and of those that
    earlier ticks failed and never told (stopped between their batches and their digest),
    and mark their actions told, in one transaction. Each tick tells the actions it locks:
    two ticks at once never tell a run twice, and a tick whose actions another took over
    tells only the rest."""
    with transaction.atomic():
        untold = _claim_untold()
        if not untold:
            return
        own = set(result.action_ids)
        if own and own <= untold:
            by_kind, facts = failed_digest(result)
        else:
            own, by_kind, facts = set(), {}, {"total": 0, "action_id": None, "rule": None}
        earlier = sorted(untold - own)
        if earlier:
            _add_earlier(by_kind, facts, earlier, result.policy)
        if facts["total"]:
            raise_digest(AlertEvent.MONITOR_FAILED, by_kind, facts)


def _claim_untold() -> set[int]:
    """Mark told, in the caller's transaction, the untold actions no other tick is telling,
    and return them: undone with the digest if it fails. One statement on PostgreSQL."""
    if not is_postgresql():
        untold = set(_untold_actions().values_list("pk", flat=True))
        MaintenanceAction.objects.filter(pk__in=untold).update(alert_pending=False)
        return untold
    table = MaintenanceAction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET alert_pending = false WHERE id IN ("
            f"SELECT id FROM {table} WHERE alert_pending FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        return {row[0] for row in cursor.fetchall()}


def _untold_actions() -> QuerySet[MaintenanceAction]:
    return MaintenanceAction.objects.filter(alert_pending=True).values("pk")


def _add_earlier(by_kind: dict, facts: dict, actions: list[int], policy: StuckPolicy) -> None:
    """Add to a digest the runs that ``actions`` failed (still in the table), oldest
    first per kind, before this tick's own."""
    records = FailedRunRecord.objects.filter(action_id__in=actions)
    runs = (
        TenderRun.objects.with_run_kind()
        .filter(pk__in=records.values("run_id"))
        .order_by("started_at", "pk")
        .values_list("run_kind", "pk")
    )
    earlier = _by_kind(runs.iterator(), lambda kind: {"timeout_minutes": policy.minutes_for(kind)})
    facts["total"] += sum(entry["count"] for entry in earlier.values())
    for kind, entry in earlier.items():
        own = by_kind.get(kind, {"count": 0, "ids": []})
        entry["count"] += own["count"]
        entry["ids"] = (entry["ids"] + own["ids"])[:DIGEST_IDS]
        by_kind[kind] = entry
    facts["action_id"] = actions[0]  # its link lists the earliest cleanup's runs
    if facts["rule"] is None:
        reasons = set(records.values_list("reason", flat=True).distinct())
        facts["rule"] = "max_runtime" if reasons == {FailReason.MAX_RUNTIME} else str(policy.rule)


def failed_digest(result: CleanupResult) -> tuple[dict, dict]:
    """What the ``monitor_failed`` (or ``stuck_not_failed``) digest says: per kind, how
    many, the first ids and the timeout; overall, how many, the audit's action and the rule
    that fired."""
    by_kind = _by_kind(
        ((run.kind, run.id) for run in result.stuck_runs),
        lambda kind: {"timeout_minutes": result.policy.minutes_for(kind)},
    )
    # The list stops at failing.LIST_LIMIT; a fleet's tick counts every run it failed.
    for kind, count in result.counts_by_kind.items():
        by_kind.setdefault(kind, {"ids": [], "timeout_minutes": result.policy.minutes_for(kind)})
        by_kind[kind]["count"] = count
    reasons = {run.reason for run in result.stuck_runs}
    rule = "max_runtime" if reasons == {FailReason.MAX_RUNTIME} else str(result.policy.rule)
    total = result.total
    return by_kind, {"total": total, "action_id": result.action_id, "rule": rule}


def _by_kind(runs: Iterable[tuple[str, str]], extra: Callable[[str], dict]) -> dict:
    by_kind: dict[str, dict] = {}
    for kind, run_id in runs:
        entry = by_kind.setdefault(kind, {"count": 0, "ids": [], **extra(kind)})
        entry["count"] += 1
        if len(entry["ids"]) < DIGEST_IDS:
            entry["ids"].append(run_id)
    return by_kind


def _waiting_sql() -> tuple[str, tuple]:
    threshold = settings.TENDEROPS_PENDING_ALERT_MINUTES
    return compiled(("tick-any-waiting", threshold), lambda: waiting_runs().values("pk"))


def _raise_waiting() -> None:
    threshold = settings.TENDEROPS_PENDING_ALERT_MINUTES
    waiting = fetch_compiled(
        ("tick-waiting", threshold),
        lambda: (
            waiting_runs().order_by("started_at").values_list("run_kind", "pk", "last_sign_of_life")
        ),
    )
    if not waiting:
        resolve_cleared(AlertEvent.WAITING, ())
        return
    now = db_now()
    oldest = {}
    for kind, _pk, moment in waiting:
        oldest.setdefault(kind, round((now - aware(moment)).total_seconds() / 60))
    by_kind = _by_kind(((kind, pk) for kind, pk, _m in waiting), lambda k: {})
    for kind, entry in by_kind.items():
        entry["oldest_minutes"] = oldest[kind]
    raise_digest(AlertEvent.WAITING, by_kind, {"threshold_minutes": threshold})
    resolve_cleared(AlertEvent.WAITING, by_kind)


def late_finish_tick() -> list[FailedRunRecord]:
    """Note the runs failed in the last TENDEROPS_MAX_RUN_MINUTES (a worker alive longer would
    have been failed anyway) that a worker has since set to success: count them (the
    ``tenderops_late_finishes_total`` counter) and tell people, with a suggested timeout.
    First, as housekeeping, the observation table is vacuumed."""
    try:
        vacuum_observations()  # housekeeping of the monitor's hot table, off its path
    except DatabaseError:
        logger.exception("could not vacuum the observation table")
    # Noted and counted in one transaction (a sweep killed in between leaves them to the
    # next, never noted and uncounted); told behind a savepoint, so that alerts that cannot
    # be recorded never keep the counter, which Prometheus alerts on, from counting.
    with transaction.atomic():
        noted = note_late_finishes()
        if noted:
            by_kind = _late_by_kind(noted)
            for kind in sorted(by_kind):  # one order for every sweep's counter rows
                increment(LATE_FINISHES, {"kind": kind}, by_kind[kind]["count"])
            _safely(lambda: raise_digest(AlertEvent.LATE_FINISH, by_kind))
    return noted


def _late_by_kind(noted: list[FailedRunRecord]) -> dict:
    runs = (
        TenderRun.objects.with_run_kind()
        .filter(pk__in=[record.run_id for record in noted])
        .values_list("run_kind", "pk", "started_at", "finished_at")
    )
    policy = StuckPolicy.configured()
    longest: dict[str, float] = {}
    for kind, _pk, started, finished in runs:
        if finished is not None:
            minutes = (finished - started).total_seconds() / 60
            longest[kind] = max(longest.get(kind, 0.0), minutes)
    by_kind = _by_kind(
        ((kind, pk) for kind, pk, _s, _f in runs),
        lambda kind: {"timeout_minutes": policy.minutes_for(kind)},
    )
    for kind, entry in by_kind.items():
        if kind in longest:
            entry["suggested_minutes"] = suggested_timeout(longest[kind])
    return by_kind


def retention_tick() -> PruneResult:
    """The daily retention: expired runs, then tenderops' own history."""
    result = prune_runs(actor=Actor.SCHEDULE)
    history = prune_history()
    beat(RETENTION, {"deleted": result.deleted, "history": history.as_dict()})
    return result
