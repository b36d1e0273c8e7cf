"""The scheduled routines as django-q2 runs them: each tick stamps its heartbeat."""

from datetime import timedelta

from django.conf import settings

from runs.maintenance.failing import CleanupResult, fail_stuck_runs, report_stuck_runs
from runs.maintenance.heartbeat import MONITOR, RETENTION, beat
from runs.maintenance.liveness import note_late_finishes
from runs.maintenance.retention import PruneResult, prune_runs
from runs.models import Actor, FailedRunRecord
from runs.vocabulary import MonitorMode


def monitor_tick() -> CleanupResult:
    """One run of the stuck-run monitor, as the schedule does it, with its heartbeat in the
    same transaction (on PostgreSQL, the same statement). In report mode it fails nothing
    and records what it would have failed."""
    if settings.TENDEROPS_MONITOR_MODE == MonitorMode.REPORT:
        return report_stuck_runs(heartbeat=MONITOR)
    return fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR)


def late_finish_tick() -> list[FailedRunRecord]:
    """Note the runs failed in the last TENDEROPS_MAX_RUN_MINUTES (a worker alive longer would
    have been failed anyway) that a worker has since set to success."""
    return note_late_finishes(timedelta(minutes=settings.TENDEROPS_MAX_RUN_MINUTES))


def retention_tick() -> PruneResult:
    result = prune_runs(actor=Actor.SCHEDULE)
    beat(RETENTION, {"deleted": result.deleted})
    return result
