"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat.

After the monitor's failing statement has committed, the tick records what it tells people:
a digest of the runs it failed, and the recovery of a stale monitor. Recording never uses the
network and never breaks the tick: an error there is logged, the runs stay failed.
"""

import logging

from django.db import transaction

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
    same transaction (on PostgreSQL, the same statement)."""
    result = fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR)
    try:
        with transaction.atomic():
            if result.fixed_count:
                raise_digest(AlertEvent.MONITOR_FAILED, *failed_digest(result))
            resolve_alert(AlertEvent.MONITOR_STALE, facts={"source": "monitor"})
    except Exception:
        logger.exception("the monitor tick could not record its alerts")
    return result


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
