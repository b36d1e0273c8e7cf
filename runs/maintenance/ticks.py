"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat.

With the monitor's failing statement, the tick records what it tells people: a digest of the
runs it failed (or, in report mode, would have failed), the runs waiting too long, and the
recovery of a stale monitor. Recording never uses the network and never breaks the tick: an
error there is logged, the runs stay failed.
"""

import logging
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min

from runs.maintenance.alerts import (
    AlertEvent,
    open_incident_sql,
    raise_digest,
    resolve_alert,
    resolve_cleared,
)
from runs.maintenance.counters import LATE_FINISHES, increment
from runs.maintenance.db import aware, compiled, db_now
from runs.maintenance.failing import CleanupResult, fail_stuck_runs
from runs.maintenance.heartbeat import MONITOR, RETENTION, beat
from runs.maintenance.history import prune_history
from runs.maintenance.late_finishes import note_late_finishes
from runs.maintenance.liveness import vacuum_observations, waiting_runs
from runs.maintenance.policy import StuckPolicy
from runs.maintenance.reporting import report_stuck_runs
from runs.maintenance.retention import PruneResult, prune_runs
from runs.maintenance.stats import suggested_timeout
from runs.maintenance.telling import (
    failed_digest,
    first_ids,
    runs_by_kind,
    tell_failed,
    untold_actions,
)
from runs.models import Actor, FailedRunRecord, TenderRun
from runs.vocabulary import REPORT_MODE_ENDED, MonitorMode

logger = logging.getLogger(__name__)


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
            "untold": compiled("tick-untold", untold_actions),
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
        # Not "no run is stuck any more": report mode has ended, and its runs are failed.
        ended = {REPORT_MODE_ENDED: True}
        _safely(lambda: resolve_cleared(AlertEvent.STUCK_NOT_FAILED, facts=ended))
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


def _waiting_sql() -> tuple[str, tuple]:
    threshold = settings.TENDEROPS_PENDING_ALERT_MINUTES
    return compiled(("tick-any-waiting", threshold), lambda: waiting_runs().values("pk"))


def _raise_waiting() -> None:
    """The ``waiting`` digest: per kind, how many, the first ids and the longest silence (a
    run requeued waits from its requeueing), counted in SQL however long the queue."""
    threshold = settings.TENDEROPS_PENDING_ALERT_MINUTES
    waiting = waiting_runs().order_by()
    per_kind = waiting.values_list("run_kind").annotate(
        count=Count("pk"), since=Min("last_sign_of_life")
    )
    now = db_now()
    by_kind = {
        kind: {"count": count, "ids": [], "oldest_minutes": _minutes(now - aware(since))}
        for kind, count, since in per_kind
    }
    if not by_kind:
        resolve_cleared(AlertEvent.WAITING, ())
        return
    for kind, ids in first_ids(waiting).items():
        by_kind[kind]["ids"] = ids
    total = sum(entry["count"] for entry in by_kind.values())
    raise_digest(AlertEvent.WAITING, by_kind, {"total": total, "threshold_minutes": threshold})
    resolve_cleared(AlertEvent.WAITING, by_kind)


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60)


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
            total = sum(entry["count"] for entry in by_kind.values())
            _safely(lambda: raise_digest(AlertEvent.LATE_FINISH, by_kind, {"total": total}))
    return noted


def _late_by_kind(noted: list[FailedRunRecord]) -> dict:
    """The late finishes by kind, each kind's timeout and, where the runs' durations say it
    should be longer, a suggested one (from the finishes that can be true only)."""
    runs = TenderRun.objects.with_run_kind().filter(pk__in=[record.run_id for record in noted])
    policy = StuckPolicy.configured()
    longest: dict[str, float] = {}
    durations = (
        runs.plausible().plausible_finish().values_list("run_kind", "started_at", "finished_at")
    )
    for kind, started, finished in durations:
        minutes = (finished - started).total_seconds() / 60
        longest[kind] = max(longest.get(kind, 0.0), minutes)
    by_kind = runs_by_kind(
        runs.values_list("run_kind", "pk"),
        lambda kind: {"timeout_minutes": policy.minutes_for(kind)},
    )
    for kind, entry in by_kind.items():
        suggested = suggested_timeout(longest[kind]) if kind in longest else None
        if suggested is not None and suggested > entry["timeout_minutes"]:
            entry["suggested_minutes"] = suggested
    return by_kind


def retention_tick() -> PruneResult:
    """The daily retention: expired runs, then tenderops' own history."""
    result = prune_runs(actor=Actor.SCHEDULE)
    history = prune_history()
    beat(RETENTION, {"deleted": result.deleted, "history": history.as_dict()})
    return result
