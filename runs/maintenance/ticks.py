"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat."""

from runs.maintenance.failing import CleanupResult, fail_stuck_runs
from runs.maintenance.heartbeat import MONITOR, RETENTION, beat
from runs.maintenance.retention import PruneResult, prune_runs
from runs.models import Actor


def monitor_tick() -> CleanupResult:
    """One run of the stuck-run monitor, as the schedule does it, with its heartbeat in the
    same transaction (on PostgreSQL, the same statement)."""
    return fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR)


def retention_tick() -> PruneResult:
    result = prune_runs(actor=Actor.SCHEDULE)
    beat(RETENTION, {"deleted": result.deleted})
    return result
