"""The maintenance routines: the one place where tenderops reads and changes ``tender_runs``.

The admin, the management commands, the HTTP API and the django-q2 tasks all call these
functions and only present what they return. Every write is guarded in the statement itself
(a run that a worker finishes in the same instant keeps its ``success``) and audited in the
same transaction (nothing a routine overwrites is lost).

Modules, from the bottom up (each imports only those above it in this list):
``policy`` (what is accepted, what is stuck or expired), ``db`` (the database clock, session
settings), ``liveness`` (observing the active runs' signs of life), ``heartbeat`` (ticks'
heartbeats, monitor health), ``counters`` (the monotonic counters of /metrics), ``alerts``
(recording alerts, with their cooldown), ``outcomes`` (what the failing routines return),
``gauges`` (the active runs as /metrics reads them), ``failing_statements`` and ``failing``
(the cleanup), ``selection`` (the operators' mark failed: its confirmation and its
failing), ``reporting`` (report mode), ``retention`` (prune), ``history``
(pruning tenderops' own tables), ``stats`` and ``stats_snapshot``, ``spikes`` (the
failure-spike rule), ``telling`` (the monitor's digests), ``ticks`` (what the schedules
run).
"""

from runs.limits import InvalidParameter
from runs.maintenance.alerts import (
    AlertEvent,
    configured_channels,
    raise_alert,
    raise_digest,
    record_test_alert,
    resolve_alert,
)
from runs.maintenance.counters import increment, late_finish_counter_by_kind
from runs.maintenance.db import db_now
from runs.maintenance.failing import (
    CleanupResult,
    StuckRun,
    cleanup_batches,
    fail_stuck_runs,
    stuck_runs_queryset,
)
from runs.maintenance.gauges import ActiveRuns, active_runs, waiting_runs_by_kind
from runs.maintenance.heartbeat import MONITOR, RETENTION, MonitorHealth, monitor_health
from runs.maintenance.late_finishes import late_finished_run_ids, late_finishes
from runs.maintenance.liveness import (
    observe_active_runs,
    over_max_runtime,
    silent_runs,
    waiting_runs,
)
from runs.maintenance.outcomes import MarkFailedResult
from runs.maintenance.policy import (
    RetentionPolicy,
    StuckPolicy,
    check_kinds,
    check_timeout_minutes,
)
from runs.maintenance.reporting import report_stuck_runs
from runs.maintenance.retention import PruneResult, expired_runs, prune_runs
from runs.maintenance.selection import mark_runs_failed
from runs.maintenance.spikes import check_failure_spikes, find_failure_spikes
from runs.maintenance.stats import STATS_WINDOWS, RunStats, collect_stats
from runs.maintenance.ticks import late_finish_tick, monitor_tick, retention_tick

__all__ = [
    "MONITOR",
    "RETENTION",
    "STATS_WINDOWS",
    "ActiveRuns",
    "AlertEvent",
    "CleanupResult",
    "cleanup_batches",
    "InvalidParameter",
    "MarkFailedResult",
    "MonitorHealth",
    "PruneResult",
    "RetentionPolicy",
    "RunStats",
    "StuckPolicy",
    "StuckRun",
    "active_runs",
    "check_failure_spikes",
    "check_kinds",
    "check_timeout_minutes",
    "collect_stats",
    "configured_channels",
    "db_now",
    "expired_runs",
    "fail_stuck_runs",
    "find_failure_spikes",
    "report_stuck_runs",
    "late_finished_run_ids",
    "late_finishes",
    "increment",
    "late_finish_counter_by_kind",
    "mark_runs_failed",
    "observe_active_runs",
    "over_max_runtime",
    "silent_runs",
    "waiting_runs",
    "monitor_health",
    "late_finish_tick",
    "monitor_tick",
    "prune_runs",
    "raise_alert",
    "raise_digest",
    "record_test_alert",
    "resolve_alert",
    "retention_tick",
    "stuck_runs_queryset",
    "waiting_runs_by_kind",
]
