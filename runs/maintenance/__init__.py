"""The maintenance routines: the one place where tenderops reads and changes ``tender_runs``.

The admin, the management commands, the HTTP API and the django-q2 tasks all call these
functions and only present what they return. Every write is guarded in the statement itself
(a run that a worker finishes in the same instant keeps its ``success``) and audited in the
same transaction (nothing a routine overwrites is lost).

Modules, from the bottom up (each imports only those above it in this list):
``policy`` (what is accepted, what is stuck or expired), ``db`` (the database clock, session
settings), ``heartbeat`` (ticks' heartbeats, monitor health), ``failing_statements`` and
``failing`` (cleanup and mark-failed), ``retention`` (prune), ``stats``, ``ticks`` (what the
schedules run).
"""

from runs.limits import InvalidParameter
from runs.maintenance.db import db_now
from runs.maintenance.failing import (
    CleanupResult,
    MarkFailedResult,
    StuckRun,
    fail_stuck_runs,
    find_stuck_runs,
    mark_runs_failed,
    report_stuck_runs,
    stuck_runs_queryset,
)
from runs.maintenance.heartbeat import MONITOR, RETENTION, MonitorHealth, monitor_health
from runs.maintenance.liveness import (
    late_finishes,
    observe_active_runs,
    over_max_runtime,
    silent_runs,
    waiting_runs,
)
from runs.maintenance.policy import (
    RetentionPolicy,
    StuckPolicy,
    check_kinds,
    check_timeout_minutes,
)
from runs.maintenance.retention import PruneResult, expired_runs, prune_runs
from runs.maintenance.stats import STATS_WINDOWS, RunStats, collect_stats
from runs.maintenance.ticks import late_finish_tick, monitor_tick, retention_tick

__all__ = [
    "MONITOR",
    "RETENTION",
    "STATS_WINDOWS",
    "CleanupResult",
    "InvalidParameter",
    "MarkFailedResult",
    "MonitorHealth",
    "PruneResult",
    "RetentionPolicy",
    "RunStats",
    "StuckPolicy",
    "StuckRun",
    "check_kinds",
    "check_timeout_minutes",
    "collect_stats",
    "db_now",
    "expired_runs",
    "fail_stuck_runs",
    "find_stuck_runs",
    "report_stuck_runs",
    "late_finishes",
    "mark_runs_failed",
    "observe_active_runs",
    "over_max_runtime",
    "silent_runs",
    "waiting_runs",
    "monitor_health",
    "late_finish_tick",
    "monitor_tick",
    "prune_runs",
    "retention_tick",
    "stuck_runs_queryset",
]
