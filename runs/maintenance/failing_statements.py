"""The statements that fail runs and audit them, PostgreSQL's and the portable one side by side.

Both keep the same promises: the guard (still stuck, still active) is checked on each row's
latest version, every failed run is audited with what it overwrote, and the counter
``tenderops_runs_failed_total{kind,actor}`` grows by what was failed, in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import QuerySet

from runs.adoption import ensure_shape
from runs.maintenance.counters import RUNS_FAILED, counter_cte, increment
from runs.maintenance.db import (
    LOCK_WAIT_SETTING,
    aware,
    compiled,
    db_now,
    execute_after,
    is_postgresql,
    minutes_between,
    now_sql,
)
from runs.maintenance.heartbeat import beat, heartbeat_cte
from runs.models import Actor, FailedRunRecord, MaintenanceAction, RunObservation, TenderRun
from runs.vocabulary import ACTIVE_STATUSES, RunStatus


@dataclass(frozen=True)
class AuditEntry:
    kind: str
    actor: Actor
    username: str
    reason: str
    parameters: dict[str, Any]
    heartbeat: str | None = None
    alert: bool = False  # the action waits for an alert to tell it (the monitor's)

    def continuing(self, first_action: int) -> AuditEntry:
        """The entry of a cleanup's later batches: their actions name its first action, whose
        runs list (``?audit=<first>``) then lists them all."""
        parameters = {**self.parameters, MaintenanceAction.CONTINUES: first_action}
        return replace(self, parameters=parameters)


class FailedRow(NamedTuple):
    id: str
    project_id: str
    kind: str
    started_at: datetime | str
    running_minutes: float | None
    reason: str
    silent_minutes: float | None
    action_id: int | None


Candidates = QuerySet[TenderRun] | Callable[[], QuerySet[TenderRun]]


def fail_and_audit(
    candidates: Candidates,
    *,
    error: str,
    audit: AuditEntry,
    limit: int | None = None,
    cache_key: Hashable | None = None,
) -> list[FailedRow]:
    """Fail ``candidates`` (a queryset, or a function making it only when needed; with
    ``limit``, the first so many in started_at order) and audit them; the caller holds the
    transaction. ``cache_key``: the same key always means the same candidates' SQL."""
    if is_postgresql():
        ensure_shape(connection)
        return _fail_and_audit_postgresql(
            candidates, error=error, audit=audit, limit=limit, cache_key=cache_key
        )
    return _fail_and_audit_portable(_resolve(candidates), error=error, audit=audit, limit=limit)


def _resolve(candidates: Candidates) -> QuerySet[TenderRun]:
    return candidates if isinstance(candidates, QuerySet) else candidates()


def _locked_rows_sql(candidates: Candidates, limit: int | None, cache_key: Hashable | None):
    def build() -> QuerySet:
        locked = (
            _resolve(candidates)
            .select_for_update(skip_locked=True, of=("self",))
            .values(
                "id",
                "run_kind",
                "fail_reason",
                "last_sign_of_life",
                "status",
                "message",
                "error",
                "finished_at",
            )
        )
        if limit is None:
            return locked
        # LockRows sits below the Limit: a row skipped or no longer stuck does not count. By
        # started_at alone, the order of the index on running runs: the scan stops after
        # ``limit`` rows (a tie-break on id would sort every candidate left, each batch).
        return locked.order_by("started_at")[:limit]

    if cache_key is None:
        sql, params = build().query.sql_with_params()
        return sql, tuple(params)
    # The monitor's: building and compiling the stuck queryset took about 3 ms of a 10 ms
    # quiet tick (cProfile), for SQL that only changes with the policy.
    return compiled(("locked-stuck-runs", cache_key, limit), build)


FAILING_SETTINGS = (
    "SELECT set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true), "
    + LOCK_WAIT_SETTING
)


def _fail_and_audit_postgresql(
    candidates: Candidates,
    *,
    error: str,
    audit: AuditEntry,
    limit: int | None,
    cache_key: Hashable | None,
) -> list[FailedRow]:
    """One statement: lock, fail, and write the audit rows, in a single round trip.

    The guard is the locking sub-select ``prev``: it checks the status and the timeout
    against each row's latest committed version (READ COMMITTED re-checks a row updated
    meanwhile) and the lock keeps the row from changing until the transaction ends. So a run
    a worker finished a moment ago no longer matches and keeps its ``success``; one a worker
    is finishing right now is locked by the worker and skipped; one that another monitor
    holds is skipped, never failed twice. ``prev`` holds exactly the values overwritten.
    ``counted`` adds the failed runs per kind to their counter in the same statement.
    ``unobserved`` forgets the failed runs' observations (see ``forget_observations_sql``).
    """
    prev_sql, prev_params = _locked_rows_sql(candidates, limit, cache_key)
    now, now_params = now_sql()
    runs = TenderRun._meta.db_table
    actions = MaintenanceAction._meta.db_table
    records = FailedRunRecord._meta.db_table
    # prev is MATERIALIZED so that it runs once. Each locked row is updated by its id, not at
    # the address it was locked at: a row a worker changed after this statement's snapshot is
    # locked in its latest version, which the snapshot cannot see at that address; by its id
    # the UPDATE finds the version it sees and follows it to the locked one. A status filter
    # on r would lure the planner into rescanning prev per row. The INSERT of the action
    # yields no row when nothing was failed, and so no records.
    sql = f"""
        WITH prev AS MATERIALIZED ({prev_sql}),
        failed AS (
            UPDATE {runs} AS r
            SET status = %s, finished_at = {now}, error = %s, message = %s
            FROM prev WHERE r.id = prev.id
            RETURNING r.id, r.project_id, prev.run_kind AS kind, r.started_at,
                      CASE WHEN isfinite(r.started_at) THEN
                          round((extract(epoch FROM r.finished_at - r.started_at) / 60)::numeric,
                                1)::float8 END AS running_minutes,
                      prev.fail_reason AS reason,
                      CASE WHEN isfinite(prev.last_sign_of_life) THEN
                          round((extract(epoch FROM r.finished_at - prev.last_sign_of_life)
                                 / 60)::numeric, 1)::float8 END AS silent_minutes,
                      prev.status AS previous_status,
                      prev.message AS previous_message, prev.error AS previous_error,
                      prev.finished_at AS previous_finished_at
        ),
        action AS (
            INSERT INTO {actions} (kind, actor, username, started_at, finished_at, parameters,
                                   reason, affected_count, completed, alert_pending)
            SELECT %s, %s, %s, {now}, {now}, %s::jsonb, %s, count(*), true, %s
            FROM failed HAVING count(*) > 0
            RETURNING id
        ),
        audited AS (
            INSERT INTO {records} (action_id, run_id, previous_status, previous_message,
                                   previous_error, previous_finished_at, reason,
                                   silent_minutes)
            SELECT action.id, failed.id, failed.previous_status, failed.previous_message,
                   failed.previous_error, failed.previous_finished_at, failed.reason,
                   failed.silent_minutes
            FROM failed CROSS JOIN action
        ),
        unobserved AS ({forget_observations_sql("failed")}),
        {counter_cte()}{heartbeat_cte(audit.heartbeat, now)}
        SELECT failed.id, project_id, kind, started_at, running_minutes, reason, silent_minutes,
               action.id
        FROM failed CROSS JOIN action
    """
    params = [
        *prev_params,
        RunStatus.FAILED,
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
        audit.alert,
        audit.actor,
        *([audit.heartbeat, *now_params] if audit.heartbeat else []),
    ]
    with connection.cursor() as cursor:
        # No JIT for a statement over the active runs (see liveness.observe_active_runs). No
        # merge join, which nothing here wants: costing one for the candidates' join with
        # their observations makes the planner read both ends of the runs' primary key, and
        # every dead entry a mass delete left there (10 M runs, 100,000 deleted at one end:
        # 12 ms of planning). The settings go with the statement, in one round trip.
        execute_after(cursor, FAILING_SETTINGS, sql, params)
        return [FailedRow(*row) for row in cursor.fetchall()]


def forget_observations_sql(failed: str) -> str:
    """DELETE the observations of the runs in ``failed`` (a CTE of their ids), here and not by
    the next observation: a fleet-wide crash's 100,000 were forgotten there in one
    transaction, up to 1.2 s under load, where each batch that fails them now forgets its own.
    Rows another transaction holds (an observer updating them) are skipped, not waited for:
    two writers of the same observations in different orders would deadlock; the next
    observation forgets those, as it forgets every run no longer active. Rows are deleted by
    their key, not at the address they were locked at: an observer's change committed after
    this statement's snapshot is locked in a version the snapshot cannot see there."""
    table = RunObservation._meta.db_table
    return (
        f"DELETE FROM {table} AS gone USING (SELECT o.run_id FROM {table} AS o "
        f"WHERE o.run_id IN (SELECT id FROM {failed}) FOR UPDATE OF o SKIP LOCKED) AS mine "
        "WHERE gone.run_id = mine.run_id"
    )


def _fail_and_audit_portable(
    candidates: QuerySet[TenderRun], *, error: str, audit: AuditEntry, limit: int | None
) -> list[FailedRow]:
    """Elsewhere (the SQLite demo): read, update by id with the same guard, then audit.

    SQLite runs the enclosing transaction as IMMEDIATE (see settings), which holds the
    database's write lock from the read on, so nothing can change in between.
    """
    fields = ("id", "project_id", "run_kind", "started_at", "fail_reason", "last_sign_of_life")
    values = candidates.values(*fields, "status", "message", "error", "finished_at")
    if limit is not None:
        values = values.order_by("started_at")[:limit]
    previous = list(values)
    if audit.heartbeat:
        beat(audit.heartbeat, {"fixed_count": len(previous)})
    if not previous:
        return []
    now = db_now()
    TenderRun.objects.filter(
        pk__in=[row["id"] for row in previous], status__in=ACTIVE_STATUSES
    ).update(status=RunStatus.FAILED, finished_at=now, error=error, message=audit.reason)
    RunObservation.objects.filter(run_id__in=[row["id"] for row in previous]).delete()
    action = MaintenanceAction.objects.create(
        kind=audit.kind,
        actor=audit.actor,
        username=audit.username,
        parameters=audit.parameters,
        reason=audit.reason,
        affected_count=len(previous),
        completed=True,
        alert_pending=audit.alert,
        started_at=now,  # its default, the clock at the INSERT, came after ``now``
        finished_at=now,
    )
    rows = [
        FailedRow(
            row["id"],
            row["project_id"],
            row["run_kind"],
            row["started_at"],
            minutes_between(aware(row["started_at"]), now),
            row["fail_reason"],
            minutes_between(aware(row["last_sign_of_life"]), now),
            action.pk,
        )
        for row in previous
    ]
    FailedRunRecord.objects.bulk_create(
        FailedRunRecord(
            action=action,
            run_id=row["id"],
            previous_status=row["status"],
            previous_message=row["message"],
            previous_error=row["error"],
            previous_finished_at=row["finished_at"],
            reason=failed.reason,
            silent_minutes=failed.silent_minutes,
        )
        for row, failed in zip(previous, rows, strict=True)
    )
    by_kind: dict[str, int] = {}
    for row in previous:
        by_kind[row["run_kind"]] = by_kind.get(row["run_kind"], 0) + 1
    for kind, count in by_kind.items():
        increment(RUNS_FAILED, {"kind": kind, "actor": audit.actor}, count)
    return rows
