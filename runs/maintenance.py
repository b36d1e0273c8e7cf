"""The maintenance routines: the one place where tenderops reads and changes ``tender_runs``.

The admin, the management commands, the HTTP API and the django-q2 tasks all call these
functions and only present what they return. Every write is guarded in the statement itself
(a run that a worker finishes in the same instant keeps its ``success``) and audited in the
same transaction (nothing a routine overwrites is lost).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Extract, Left, Now, TruncDate
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from runs.models import (
    Actor,
    FailedRunRecord,
    Heartbeat,
    MaintenanceAction,
    TenderRun,
)
from runs.vocabulary import ACTIVE_STATUSES, FINISHED_STATUSES, RunStatus

# Upper bounds that keep every input far from datetime overflow (about 100 years).
MAX_TIMEOUT_MINUTES = 52_560_000
MAX_RETENTION_DAYS = 36_500
MAX_BATCH_SIZE = 1_000_000
# Prune batches aim at this duration: long enough to amortise each batch's fixed costs, short
# enough that no transaction holds its row locks for long (bench/results.md).
PRUNE_BATCH_SECONDS = 0.25
FIRST_PRUNE_BATCH = 20_000
MIN_PRUNE_BATCH = 1_000
MAX_KIND_LENGTH = 200

# What a person may mark failed by hand: anything not finished and not of unknown status.
MARKABLE_STATUSES = ACTIVE_STATUSES


class InvalidParameter(ValueError):
    """A parameter outside what the routines accept; the message says which and why."""


# --- parameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StuckPolicy:
    """How long a run of each kind may stay ``running`` before it counts as stuck."""

    default_minutes: int
    per_kind_minutes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def configured(cls, timeout_minutes: int | None = None) -> StuckPolicy:
        """The settings' policy; an explicit ``timeout_minutes`` applies to every kind."""
        if timeout_minutes is not None:
            return cls(default_minutes=check_timeout_minutes(timeout_minutes))
        return cls(
            default_minutes=settings.TENDEROPS_STUCK_TIMEOUT_MINUTES,
            per_kind_minutes=dict(settings.TENDEROPS_STUCK_TIMEOUTS),
        )

    def minutes_for(self, kind: str) -> int:
        return self.per_kind_minutes.get(kind, self.default_minutes)

    def timed_out(self) -> Q:
        """Rows of annotated ``run_kind`` whose ``started_at`` is past their timeout (DB clock)."""
        overridden = list(self.per_kind_minutes)
        condition = Q(started_at__lt=Now() - timedelta(minutes=self.default_minutes))
        if overridden:
            condition &= ~Q(run_kind__in=overridden)
        for kind, minutes in self.per_kind_minutes.items():
            condition |= Q(run_kind=kind, started_at__lt=Now() - timedelta(minutes=minutes))
        return condition

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_minutes": self.default_minutes,
            "per_kind_minutes": dict(self.per_kind_minutes),
        }


def check_positive_int(value: Any, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(_("%(name)s must be a whole number.") % {"name": name})
    if not 1 <= value <= maximum:
        raise InvalidParameter(
            _("%(name)s must be between 1 and %(maximum)d, got %(value)d.")
            % {"name": name, "maximum": maximum, "value": value}
        )
    return value


def check_timeout_minutes(value: Any) -> int:
    return check_positive_int(value, "timeout_minutes", MAX_TIMEOUT_MINUTES)


def check_kinds(kinds: Iterable[str]) -> list[str]:
    checked = []
    for kind in kinds:
        if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_KIND_LENGTH:
            raise InvalidParameter(
                _("A kind must be non-empty text of at most %(maximum)d characters.")
                % {"maximum": MAX_KIND_LENGTH}
            )
        checked.append(kind.strip())
    return checked


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StuckRun:
    id: str
    project_id: str
    kind: str
    started_at: datetime
    running_minutes: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "running_minutes": self.running_minutes,
        }


@dataclass(frozen=True)
class CleanupResult:
    stuck_runs: list[StuckRun]
    fixed_count: int
    dry_run: bool
    policy: StuckPolicy

    @property
    def message(self) -> str:
        if self.dry_run:
            return ngettext(
                "Dry run: %(count)d stuck run found, nothing changed.",
                "Dry run: %(count)d stuck runs found, nothing changed.",
                len(self.stuck_runs),
            ) % {"count": len(self.stuck_runs)}
        return ngettext(
            "Fixed %(count)d stuck run.", "Fixed %(count)d stuck runs.", self.fixed_count
        ) % {"count": self.fixed_count}

    def as_dict(self) -> dict[str, Any]:
        """The JSON object that the API returns and ``cleanup_stuck_runs --json`` prints."""
        return {
            "fixed_count": self.fixed_count,
            "stuck_runs": [run.as_dict() for run in self.stuck_runs],
            "message": self.message,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class MarkFailedResult:
    failed: list[StuckRun]
    skipped_count: int


@dataclass
class PruneResult:
    cutoffs: dict[str, datetime]
    deleted: dict[str, int]
    dry_run: bool
    batches: int = 0
    longest_batch_seconds: float = 0.0
    action_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    @property
    def message(self) -> str:
        counts = {
            "failed": self.deleted.get("failed", 0),
            "success": self.deleted.get("success", 0),
        }
        if self.dry_run:
            return (
                _("Dry run: %(failed)d failed and %(success)d successful runs would be deleted.")
                % counts
            )
        return _("Deleted %(failed)d failed and %(success)d successful runs.") % counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted": dict(self.deleted),
            "total": self.total,
            "cutoffs": {status: cutoff.isoformat() for status, cutoff in self.cutoffs.items()},
            "batches": self.batches,
            "dry_run": self.dry_run,
            "message": self.message,
        }


# --- database clock --------------------------------------------------------------------------


def _now_sql() -> tuple[str, list[Any]]:
    """The database's current-time expression, as Django's ``Now()`` compiles it here."""
    compiler = TenderRun.objects.none().query.get_compiler(connection=connection)
    sql, params = compiler.compile(Now())
    return sql, list(params)


def _aware(value: datetime | str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else value
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def db_now() -> datetime:
    sql, params = _now_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return _aware(cursor.fetchone()[0])


def _minutes_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 60, 1)


# --- stuck runs ------------------------------------------------------------------------------


def stuck_runs_queryset(
    policy: StuckPolicy, kinds: Sequence[str] = (), run_ids: Sequence[str] | None = None
) -> QuerySet[TenderRun]:
    """The single definition of "stuck": running, and started longer ago than its timeout."""
    queryset = TenderRun.objects.stuck(policy)
    if kinds:
        queryset = queryset.filter(run_kind__in=list(kinds))
    if run_ids is not None:
        queryset = queryset.filter(pk__in=list(run_ids))
    return queryset


def find_stuck_runs(
    *, timeout_minutes: int | None = None, kinds: Sequence[str] = ()
) -> list[StuckRun]:
    policy = StuckPolicy.configured(timeout_minutes)
    return _list_runs(stuck_runs_queryset(policy, check_kinds(kinds)))


def count_stuck_runs() -> int:
    return stuck_runs_queryset(StuckPolicy.configured()).count()


def _list_runs(queryset: QuerySet[TenderRun]) -> list[StuckRun]:
    rows = queryset.annotate(db_now=Now()).order_by("started_at", "pk")
    return [
        StuckRun(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["run_kind"],
            started_at=row["started_at"],
            running_minutes=_minutes_between(row["started_at"], row["db_now"]),
        )
        for row in rows.values("id", "project_id", "run_kind", "started_at", "db_now")
    ]


def fail_stuck_runs(
    *,
    actor: Actor,
    username: str = "",
    timeout_minutes: int | None = None,
    kinds: Sequence[str] = (),
    run_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    heartbeat: str | None = None,
) -> CleanupResult:
    """Fail the runs that are stuck now; with ``run_ids``, only those of them still stuck.

    ``heartbeat`` names a heartbeat to stamp in the same transaction (the monitor's).
    """
    policy = StuckPolicy.configured(timeout_minutes)
    kinds = check_kinds(kinds)
    candidates = stuck_runs_queryset(policy, kinds, run_ids)
    if dry_run:
        found = _list_runs(candidates)
        return CleanupResult(stuck_runs=found, fixed_count=0, dry_run=True, policy=policy)
    failed = _fail_runs(
        candidates,
        action_kind=MaintenanceAction.Kind.FAIL_STUCK,
        actor=actor,
        username=username,
        message=settings.TENDEROPS_STUCK_MESSAGE,
        parameters={"policy": policy.as_dict(), "kinds": kinds},
        heartbeat=heartbeat,
    )
    return CleanupResult(stuck_runs=failed, fixed_count=len(failed), dry_run=False, policy=policy)


def mark_runs_failed(
    runs: QuerySet[TenderRun], *, actor: Actor, username: str = "", reason: str = ""
) -> MarkFailedResult:
    """Fail the pending or running runs among ``runs``; count the others as skipped."""
    reason = reason.strip() or settings.TENDEROPS_STUCK_MESSAGE
    selected = runs.order_by().values("pk")
    total = selected.count()
    candidates = TenderRun.objects.with_run_kind().filter(
        pk__in=selected, status__in=MARKABLE_STATUSES
    )
    failed = _fail_runs(
        candidates,
        action_kind=MaintenanceAction.Kind.MARK_FAILED,
        actor=actor,
        username=username,
        message=reason,
        parameters={"selected": total},
    )
    return MarkFailedResult(failed=failed, skipped_count=total - len(failed))


@dataclass(frozen=True)
class _AuditEntry:
    kind: str
    actor: Actor
    username: str
    reason: str
    parameters: dict[str, Any]
    heartbeat: str | None = None


class _FailedRow(NamedTuple):
    id: str
    project_id: str
    kind: str
    started_at: datetime | str
    running_minutes: float


def _fail_runs(
    candidates: QuerySet[TenderRun],
    *,
    action_kind: str,
    actor: Actor,
    username: str,
    message: str,
    parameters: dict[str, Any],
    heartbeat: str | None = None,
) -> list[StuckRun]:
    """Fail ``candidates`` with ``message`` and audit what that overwrote, atomically.

    Nothing changed, nothing audited: a quiet monitor tick writes no record.
    """
    audit = _AuditEntry(action_kind, actor, username, message, parameters, heartbeat)
    postgresql = connection.vendor == "postgresql"
    fail = _fail_and_audit_postgresql if postgresql else _fail_and_audit_portable
    # No savepoint: inside a caller's transaction a failure undoes it all.
    with transaction.atomic(savepoint=False):
        rows = fail(candidates, error=settings.TENDEROPS_STUCK_ERROR, audit=audit)
    failed = (
        StuckRun(
            id=row.id,
            project_id=row.project_id,
            kind=row.kind,
            started_at=_aware(row.started_at),
            running_minutes=row.running_minutes,
        )
        for row in rows
    )
    return sorted(failed, key=lambda run: (run.started_at, run.id))


def _fail_and_audit_postgresql(
    candidates: QuerySet[TenderRun], *, error: str, audit: _AuditEntry
) -> list[_FailedRow]:
    """One statement: lock, fail, and write the audit rows, in a single round trip.

    The guard is the locking sub-select ``prev``: it checks the status and the timeout
    against each row's latest committed version (READ COMMITTED re-checks a row updated
    meanwhile) and the lock keeps the row from changing until the transaction ends. So a run
    a worker finished a moment ago no longer matches and keeps its ``success``; one a worker
    is finishing right now is locked by the worker and skipped; one that another monitor
    holds is skipped, never failed twice. ``prev`` holds exactly the values overwritten.
    """
    locked = (
        candidates.select_for_update(skip_locked=True, of=("self",))
        .annotate(row_address=RawSQL("ctid", ()))
        .values("row_address", "status", "message", "error", "finished_at")
    )
    prev_sql, prev_params = locked.query.sql_with_params()
    now_sql, now_params = _now_sql()
    runs = TenderRun._meta.db_table
    actions = MaintenanceAction._meta.db_table
    records = FailedRunRecord._meta.db_table
    # prev is MATERIALIZED so that it runs once; each locked row is then updated at the
    # physical address it was locked at (a row cannot move while we hold its lock), without a
    # second descent of the primary key. A status filter on r would lure the planner into
    # rescanning prev per row. The INSERT of the action yields no row when nothing was
    # failed, and so no records.
    sql = f"""
        WITH prev AS MATERIALIZED ({prev_sql}),
        failed AS (
            UPDATE {runs} AS r
            SET status = 'failed', finished_at = {now_sql}, error = %s, message = %s
            FROM prev WHERE r.ctid = prev.row_address
            RETURNING r.id, r.project_id, COALESCE(r.kind, r.run_type) AS kind, r.started_at,
                      round((extract(epoch FROM r.finished_at - r.started_at) / 60)::numeric,
                            1)::float8 AS running_minutes, prev.status AS previous_status,
                      prev.message AS previous_message, prev.error AS previous_error,
                      prev.finished_at AS previous_finished_at
        ),
        action AS (
            INSERT INTO {actions} (kind, actor, username, started_at, finished_at, parameters,
                                   reason, affected_count, completed)
            SELECT %s, %s, %s, {now_sql}, {now_sql}, %s::jsonb, %s, count(*), true
            FROM failed HAVING count(*) > 0
            RETURNING id
        ),
        audited AS (
            INSERT INTO {records} (action_id, run_id, previous_status, previous_message,
                                   previous_error, previous_finished_at)
            SELECT action.id, failed.id, failed.previous_status, failed.previous_message,
                   failed.previous_error, failed.previous_finished_at
            FROM failed CROSS JOIN action
        ){_heartbeat_cte(audit.heartbeat, now_sql)}
        SELECT id, project_id, kind, started_at, running_minutes FROM failed
    """
    params = [
        *prev_params,
        *now_params,
        error,
        audit.reason,
        audit.kind,
        audit.actor,
        audit.username,
        *now_params,
        *now_params,
        json.dumps(audit.parameters, ensure_ascii=False),
        audit.reason,
        *([audit.heartbeat, *now_params] if audit.heartbeat else []),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_FailedRow(*row) for row in cursor.fetchall()]


def _heartbeat_cte(name: str | None, now_sql: str) -> str:
    """The upsert of heartbeat ``name`` (a parameter), as one more part of the failing
    statement: the monitor's whole tick is then a single statement."""
    if name is None:
        return ""
    upsert = _heartbeat_upsert(
        f"SELECT %s, {now_sql}, jsonb_build_object('fixed_count', count(*)) FROM failed"
    )
    return f",\n        beat AS ({upsert})"


def _heartbeat_upsert(row_sql: str) -> str:
    """Insert or update the heartbeat whose (name, finished at, result) ``row_sql`` yields."""
    return (
        f"INSERT INTO {Heartbeat._meta.db_table} (name, last_finished_at, last_result) "
        f"{row_sql} ON CONFLICT (name) DO UPDATE SET "
        "last_finished_at = excluded.last_finished_at, last_result = excluded.last_result"
    )


def _fail_and_audit_portable(
    candidates: QuerySet[TenderRun], *, error: str, audit: _AuditEntry
) -> list[_FailedRow]:
    """Elsewhere (the SQLite demo): read, update by id with the same guard, then audit.

    SQLite runs the enclosing transaction as IMMEDIATE (see settings), which holds the
    database's write lock from the read on, so nothing can change in between.
    """
    previous = list(
        candidates.values_list(
            "id",
            "project_id",
            "run_kind",
            "started_at",
            "status",
            "message",
            "error",
            "finished_at",
        )
    )
    if audit.heartbeat:
        _beat(audit.heartbeat, {"fixed_count": len(previous)})
    if not previous:
        return []
    now = db_now()
    TenderRun.objects.filter(
        pk__in=[row[0] for row in previous], status__in=MARKABLE_STATUSES
    ).update(status="failed", finished_at=now, error=error, message=audit.reason)
    action = MaintenanceAction.objects.create(
        kind=audit.kind,
        actor=audit.actor,
        username=audit.username,
        parameters=audit.parameters,
        reason=audit.reason,
        affected_count=len(previous),
        completed=True,
        finished_at=now,
    )
    FailedRunRecord.objects.bulk_create(
        FailedRunRecord(
            action=action,
            run_id=run_id,
            previous_status=status,
            previous_message=message,
            previous_error=previous_error,
            previous_finished_at=finished_at,
        )
        for run_id, _p, _k, _s, status, message, previous_error, finished_at in previous
    )
    return [
        _FailedRow(run_id, project, kind, started, _minutes_between(_aware(started), now))
        for run_id, project, kind, started, *_ in previous
    ]


# --- retention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    failed_days: int
    success_days: int
    batch_size: int

    @classmethod
    def configured(
        cls,
        failed_days: int | None = None,
        success_days: int | None = None,
        batch_size: int | None = None,
    ) -> RetentionPolicy:
        def pick(value: int | None, default: int, name: str, maximum: int) -> int:
            return check_positive_int(default if value is None else value, name, maximum)

        return cls(
            failed_days=pick(
                failed_days,
                settings.TENDEROPS_RETENTION_FAILED_DAYS,
                "failed_days",
                MAX_RETENTION_DAYS,
            ),
            success_days=pick(
                success_days,
                settings.TENDEROPS_RETENTION_SUCCESS_DAYS,
                "success_days",
                MAX_RETENTION_DAYS,
            ),
            batch_size=pick(
                batch_size, settings.TENDEROPS_PRUNE_BATCH_SIZE, "batch_size", MAX_BATCH_SIZE
            ),
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Only these two statuses are ever deleted; the cutoffs are fixed for a whole prune."""
        return {
            "failed": now - timedelta(days=self.failed_days),
            "success": now - timedelta(days=self.success_days),
        }


def expired_runs(status: str, cutoff: datetime) -> QuerySet[TenderRun]:
    return TenderRun.objects.filter(status=status, started_at__lt=cutoff)


def prune_runs(
    *,
    actor: Actor,
    username: str = "",
    failed_days: int | None = None,
    success_days: int | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[PruneResult], None] | None = None,
) -> PruneResult:
    """Delete expired finished runs, one short transaction per batch.

    Each batch commits its delete together with the audit record's running count, so a crash
    loses at most the batch in flight, the audit says how far it got, and running the prune
    again simply continues. Batches hold at most ``batch_size`` runs and are sized to take
    about ``PRUNE_BATCH_SECONDS``: on a slow disk they shrink rather than hold locks longer.
    """
    policy = RetentionPolicy.configured(failed_days, success_days, batch_size)
    result = PruneResult(cutoffs=policy.cutoffs(db_now()), deleted={}, dry_run=dry_run)
    if dry_run:
        for status, cutoff in result.cutoffs.items():
            result.deleted[status] = expired_runs(status, cutoff).count()
        return result
    action: MaintenanceAction | None = None
    size = min(policy.batch_size, FIRST_PRUNE_BATCH)
    for status, cutoff in result.cutoffs.items():
        result.deleted[status] = 0
        resume_from: datetime | None = None
        more = True
        while more:
            began = time.perf_counter()
            with transaction.atomic():
                _commit_without_flush_wait()
                deleted, resume_from = _delete_batch(status, cutoff, size, resume_from)
                more = resume_from is not None
                if deleted:
                    result.deleted[status] += deleted
                    action = _audit_prune_progress(action, result, policy, actor, username)
            seconds = time.perf_counter() - began
            result.batches += 1
            result.longest_batch_seconds = max(result.longest_batch_seconds, seconds)
            size = _next_batch_size(size, seconds, policy.batch_size)
            if on_batch is not None:
                on_batch(result)
    if action is not None:
        action.completed = True
        action.finished_at = Now()
        action.save(update_fields=["completed", "finished_at"])
        result.action_id = action.pk
    return result


def _commit_without_flush_wait() -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL).

    Safe for a prune batch: a crash can only undo the last batches whole, their deletes with
    their audit counts, which leaves expired runs for the next prune and an audit that still
    matches the table. The next synchronous commit flushes them anyway. The batch then no
    longer waits for each flush in turn, and the WAL writer flushes while it deletes.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _set_local(cursor, {"synchronous_commit": "off"})


def _next_batch_size(size: int, seconds: float, largest: int) -> int:
    """Steer the next batch toward PRUNE_BATCH_SECONDS, by at most a factor of two a step."""
    factor = min(2.0, max(0.5, PRUNE_BATCH_SECONDS / max(seconds, 1e-6)))
    return max(min(MIN_PRUNE_BATCH, largest), min(largest, int(size * factor)))


def _delete_batch(
    status: str, cutoff: datetime, size: int, resume_from: datetime | None
) -> tuple[int, datetime | None]:
    """Delete the oldest expired runs from ``resume_from`` on, about ``size`` of them; return
    how many, and where the next batch begins (None: nothing left).

    The batch is a ``started_at`` range: its end is read from the index alone, and the delete
    is then one index range scan, the same plan as a hand-written DELETE. Each batch starts
    where the last ended, so no scan wades through the index entries of rows already deleted
    (and not yet vacuumed). The delete's own condition is the policy, so a row changed
    meanwhile is re-checked on its latest version and kept if it no longer qualifies.
    """
    expired = expired_runs(status, cutoff)
    if resume_from is not None:
        expired = expired.filter(started_at__gte=resume_from)
    ends = expired.order_by("started_at").values_list("started_at", flat=True)[size : size + 1]
    end = next(iter(ends), None)
    if end is None:
        return expired.delete()[0], None
    deleted = expired.filter(started_at__lt=end).delete()[0]
    if not deleted:
        # More than ``size`` runs started at the very same instant: take them all at once.
        deleted = expired.filter(started_at=end).delete()[0]
    return deleted, end


def _audit_prune_progress(
    action: MaintenanceAction | None,
    result: PruneResult,
    policy: RetentionPolicy,
    actor: Actor,
    username: str,
) -> MaintenanceAction:
    if action is None:
        action = MaintenanceAction(
            kind=MaintenanceAction.Kind.PRUNE, actor=actor, username=username
        )
        action.parameters = {
            "failed_days": policy.failed_days,
            "success_days": policy.success_days,
            "batch_size": policy.batch_size,
            "cutoffs": {status: cutoff.isoformat() for status, cutoff in result.cutoffs.items()},
        }
    action.affected_count = result.total
    action.parameters["deleted"] = dict(result.deleted)
    action.save()
    return action


# --- scheduled ticks and monitor health ------------------------------------------------------

MONITOR = "monitor"
RETENTION = "retention"
STALE_AFTER_INTERVALS = 3


def monitor_tick() -> CleanupResult:
    """One run of the stuck-run monitor, as the schedule does it, with its heartbeat in the
    same transaction (on PostgreSQL, the same statement)."""
    return fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR)


def retention_tick() -> PruneResult:
    result = prune_runs(actor=Actor.SCHEDULE)
    _beat(RETENTION, {"deleted": result.deleted})
    return result


def _beat(name: str, result: dict[str, Any]) -> None:
    """Upsert the heartbeat in one statement, stamped by the database's clock."""
    now_sql, now_params = _now_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            _heartbeat_upsert(f"VALUES (%s, {now_sql}, %s)"),
            [name, *now_params, json.dumps(result)],
        )


@dataclass(frozen=True)
class MonitorHealth:
    checked_at: datetime
    last_run_at: datetime | None
    last_result: dict[str, Any]
    interval_minutes: int
    running_count: int
    stuck_count: int

    @property
    def stale_after(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes * STALE_AFTER_INTERVALS)

    @property
    def healthy(self) -> bool:
        return (
            self.last_run_at is not None and self.checked_at - self.last_run_at <= self.stale_after
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "stale",
            "monitor_last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "monitor_last_result": self.last_result,
            "monitor_interval_minutes": self.interval_minutes,
            "stale_after_seconds": int(self.stale_after.total_seconds()),
            "running_count": self.running_count,
            "stuck_count": self.stuck_count,
            "checked_at": self.checked_at.isoformat(),
        }


def monitor_health() -> MonitorHealth:
    beat = Heartbeat.objects.filter(name=MONITOR).first()
    return MonitorHealth(
        checked_at=db_now(),
        last_run_at=beat.last_finished_at if beat else None,
        last_result=beat.last_result if beat else {},
        interval_minutes=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES,
        running_count=TenderRun.objects.running().count(),
        stuck_count=count_stuck_runs(),
    )


# --- statistics ------------------------------------------------------------------------------

STATS_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DURATION_WINDOW = timedelta(days=30)
# Durations come from at most this many of the most recent successful runs: a bounded read
# however large the table, and plenty for a p95.
DURATION_SAMPLE = 50_000
DAILY_WINDOW_DAYS = 30
TOP_ERRORS = 5
ERROR_PREVIEW_CHARS = 200
SUGGESTION_HEADROOM = 1.2
MIN_SUGGESTED_MINUTES = 5


@dataclass(frozen=True)
class KindDurations:
    kind: str
    runs: int
    p50_minutes: float
    p95_minutes: float
    max_minutes: float
    configured_minutes: int

    @property
    def suggested_minutes(self) -> int:
        """The longest recent successful run plus 20 %, in whole minutes: a timeout that
        would have failed none of them."""
        return max(MIN_SUGGESTED_MINUTES, math.ceil(self.max_minutes * SUGGESTION_HEADROOM))


@dataclass(frozen=True)
class WindowFailures:
    window: str
    finished: int
    failed: int
    top_errors: list[tuple[str, int]]

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None


@dataclass(frozen=True)
class RunStats:
    counts: dict[tuple[str, str], int]
    statuses: list[str]
    kinds: list[str]
    running: int
    stuck: int
    durations: list[KindDurations]
    failures: list[WindowFailures]
    daily: list[tuple[date, dict[str, int]]]
    health: MonitorHealth

    def count(self, status: str, kind: str) -> int:
        return self.counts.get((status, kind), 0)


def collect_stats() -> RunStats:
    """Everything the stats page shows. Only the status x kind table reads the whole table
    (one GROUP BY, as operators ran it by hand); the rest reads bounded windows by index."""
    now = db_now()
    with _local_settings(jit="off"):
        counts = _counts_by_status_and_kind()
        with _local_settings(enable_seqscan="off"):
            daily, failures = _recent_activity(now)
            durations = _durations_by_kind(now - DURATION_WINDOW)
    health = monitor_health()
    return RunStats(
        counts=counts,
        statuses=_ordered(RunStatus.values, {status for status, _k in counts}),
        kinds=_ordered((), {kind for _s, kind in counts}),
        running=health.running_count,
        stuck=health.stuck_count,
        durations=durations,
        failures=failures,
        daily=daily,
        health=health,
    )


@contextmanager
def _local_settings(**settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements inside only, restored after them.

    The stats page needs two. ``jit = off``: compiling a whole-table aggregate costs about
    0.4 s of CPU and saves less. ``enable_seqscan = off`` for the windows of recent days: they
    are a few per cent of a time-ordered heap, hence of its pages, but bitmap-scan costing
    ignores that order, and with the default ``random_page_cost`` the planner scans the whole
    table instead (the 30-day window at 10 M runs: 1.1 s, against 0.4 s by its index).
    """
    if connection.vendor != "postgresql":
        yield
        return
    names = list(settings)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(['current_setting(%s)'] * len(names))}", names)
        before = dict(zip(names, cursor.fetchone(), strict=True))
        _set_local(cursor, settings)
        yield
        # On an error the savepoint's rollback restores them instead.
        _set_local(cursor, before)


def _set_local(cursor: Any, settings: Mapping[str, str]) -> None:
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _ordered(first: Sequence[str], present: set[str]) -> list[str]:
    return [*(v for v in first if v in present), *sorted(present - set(first))]


def _counts_by_status_and_kind() -> dict[tuple[str, str], int]:
    rows = (
        TenderRun.objects.with_run_kind()
        .order_by()
        .values_list("status", "run_kind")
        .annotate(total=Count("pk"))
    )
    return {(status, kind): total for status, kind, total in rows}


def _durations_by_kind(since: datetime) -> list[KindDurations]:
    policy = StuckPolicy.configured()
    if connection.vendor == "postgresql":
        rows = _duration_percentiles_postgresql(since)
    else:
        rows = _duration_percentiles_portable(since)
    return [
        KindDurations(kind, runs, p50 / 60, p95 / 60, longest / 60, policy.minutes_for(kind))
        for kind, runs, p50, p95, longest in rows
    ]


def _recent_successes(since: datetime) -> QuerySet[TenderRun]:
    """The most recent successful runs, newest first: one bounded index range."""
    return (
        TenderRun.objects.with_run_kind()
        .filter(status="success", started_at__gte=since, finished_at__isnull=False)
        .order_by("-started_at")
    )


def _duration_percentiles_postgresql(since: datetime) -> list[tuple[str, int, float, float, float]]:
    sql, params = (
        _recent_successes(since)
        .annotate(seconds=Extract(F("finished_at") - F("started_at"), "epoch"))
        .values_list("run_kind", "seconds")[:DURATION_SAMPLE]
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_kind, count(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds), max(seconds) "
            f"FROM ({sql}) AS durations (run_kind, seconds) GROUP BY run_kind ORDER BY run_kind",
            params,
        )
        return [(k, n, float(p50), float(p95), float(m)) for k, n, p50, p95, m in cursor.fetchall()]


def _duration_percentiles_portable(since: datetime) -> list[tuple[str, int, float, float, float]]:
    by_kind: dict[str, list[float]] = {}
    rows = _recent_successes(since).values_list("run_kind", "started_at", "finished_at")
    for kind, started, finished in rows[:DURATION_SAMPLE]:
        by_kind.setdefault(kind, []).append((finished - started).total_seconds())
    return [
        (kind, len(values), _percentile(values, 0.5), _percentile(values, 0.95), max(values))
        for kind, values in sorted(by_kind.items())
    ]


def _percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _recent_activity(
    now: datetime,
) -> tuple[list[tuple[date, dict[str, int]]], list[WindowFailures]]:
    """Runs per day by status and the failure windows, from one pass over the last 30 days."""
    first_day = (now - timedelta(days=DAILY_WINDOW_DAYS - 1)).date()
    since = min(
        datetime.combine(first_day, datetime.min.time(), tzinfo=UTC),
        now - max(STATS_WINDOWS.values()),
    )
    window_counts = {
        f"in_{name}": Count("pk", filter=Q(started_at__gte=now - span))
        for name, span in STATS_WINDOWS.items()
    }
    rows = (
        TenderRun.objects.filter(started_at__gte=since)
        .annotate(day=TruncDate("started_at", tzinfo=UTC))
        .order_by()
        .values("day", "status")
        .annotate(total=Count("pk"), **window_counts)
    )
    per_day: dict[date, dict[str, int]] = {
        first_day + timedelta(days=offset): {} for offset in range(DAILY_WINDOW_DAYS)
    }
    finished = dict.fromkeys(STATS_WINDOWS, 0)
    failed = dict.fromkeys(STATS_WINDOWS, 0)
    for row in rows:
        if row["day"] >= first_day:
            per_day.setdefault(row["day"], {})[row["status"]] = row["total"]
        for name in STATS_WINDOWS:
            if row["status"] in FINISHED_STATUSES:
                finished[name] += row[f"in_{name}"]
            if row["status"] == "failed":
                failed[name] += row[f"in_{name}"]
    failures = [
        WindowFailures(
            window=name,
            finished=finished[name],
            failed=failed[name],
            top_errors=_top_errors(now - span),
        )
        for name, span in STATS_WINDOWS.items()
    ]
    return sorted(per_day.items()), failures


def _top_errors(since: datetime) -> list[tuple[str, int]]:
    return list(
        TenderRun.objects.filter(status="failed", started_at__gte=since)
        .annotate(error_text=Coalesce(Left("error", ERROR_PREVIEW_CHARS), Value("")))
        .order_by()
        .values_list("error_text")
        .annotate(total=Count("pk"))
        .order_by("-total", "error_text")[:TOP_ERRORS]
    )
