"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat.

With the monitor's failing statement, the tick records what it tells people: a digest of the
runs it failed, and the recovery of a stale monitor. Recording never uses the network and
never breaks the tick: an error there is logged, the runs stay failed.
"""

import logging
from collections.abc import Callable
from contextlib import nullcontext

from django.db import connection, transaction

from runs.maintenance.alerts import AlertEvent, raise_digest, resolve_alert
from runs.maintenance.failing import CleanupResult, fail_stuck_runs
from runs.maintenance.heartbeat import MONITOR, RETENTION, beat
from runs.maintenance.retention import PruneResult, prune_runs
from runs.models import Actor

logger = logging.getLogger(__name__)

# A digest lists at most this many run ids per kind (oldest first).
DIGEST_IDS = 5


def monitor_tick() -> CleanupResult:
    """One run of the stuck-run monitor, as the schedule does it, with its heartbeat in the
    same transaction (on PostgreSQL, the same statement). Its digest joins that transaction
    behind a savepoint (an error there undoes the digest only), so a tick that alerts costs
    no more commits than one that does not; a stale monitor's recovery is recorded after."""
    with transaction.atomic():
        result = fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR)
        if result.fixed_count:
            _safely(lambda: raise_digest(AlertEvent.MONITOR_FAILED, *failed_digest(result)))
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


def failed_digest(result: CleanupResult) -> tuple[dict, dict]:
    """What the ``monitor_failed`` digest says: per kind, how many, the first ids and the
    timeout; overall, how many, the audit's action and the rule that fired."""
    by_kind: dict[str, dict] = {}
    for run in result.stuck_runs:
        entry = by_kind.setdefault(
            run.kind,
            {"count": 0, "ids": [], "timeout_minutes": result.policy.minutes_for(run.kind)},
        )
        entry["count"] += 1
        if len(entry["ids"]) < DIGEST_IDS:
            entry["ids"].append(run.id)
    facts = {"total": result.fixed_count, "action_id": result.action_id, "rule": "age"}
    return by_kind, facts


def retention_tick() -> PruneResult:
    result = prune_runs(actor=Actor.SCHEDULE)
    beat(RETENTION, {"deleted": result.deleted})
    return result
