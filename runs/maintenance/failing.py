"""Failing runs: the stuck-run cleanup and the operators' "mark failed", both audited.

Which runs are stuck is ``TenderRun.objects.stuck(policy)``; how they are failed (one guarded
statement on PostgreSQL, its portable twin elsewhere) is ``failing_statements``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, QuerySet, Value
from django.db.models.functions import Now
from django.utils.translation import ngettext

from runs.maintenance.db import aware, minutes_between
from runs.maintenance.failing_statements import AuditEntry, fail_and_audit
from runs.maintenance.heartbeat import beat
from runs.maintenance.liveness import observe_active_runs
from runs.maintenance.policy import StuckPolicy, check_kinds
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import FailReason, RunStatus


@dataclass(frozen=True)
class StuckRun:
    id: str
    project_id: str
    kind: str
    started_at: datetime
    running_minutes: float | None  # None for a run started at +/-infinity (marked by hand)
    reason: str = FailReason.AGE
    silent_minutes: float | None = None  # since its last sign of life

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "running_minutes": self.running_minutes,
            "silent_minutes": self.silent_minutes,
            "reason": str(self.reason),
        }


@dataclass(frozen=True)
class CleanupResult:
    stuck_runs: list[StuckRun]
    fixed_count: int
    dry_run: bool
    policy: StuckPolicy
    action_id: int | None = None  # the audit's action, when something was failed

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


def _list_runs(queryset: QuerySet[TenderRun]) -> list[StuckRun]:
    rows = queryset.annotate(db_now=Now()).order_by("started_at", "pk")
    fields = ("id", "project_id", "run_kind", "started_at", "last_sign_of_life", "db_now")
    return [
        StuckRun(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["run_kind"],
            started_at=row["started_at"],
            running_minutes=minutes_between(row["started_at"], row["db_now"]),
            reason=row["fail_reason"],
            silent_minutes=minutes_between(row["last_sign_of_life"], row["db_now"]),
        )
        for row in rows.values(*fields, "fail_reason")
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

    Every active run is observed first (its signs of life), dry run or not: that writes
    only tenderops' own table. ``heartbeat`` names a heartbeat to stamp in the same
    transaction as the failing (the monitor's).
    """
    policy = StuckPolicy.configured(timeout_minutes)
    kinds = check_kinds(kinds)
    observe_active_runs()
    candidates = stuck_runs_queryset(policy, kinds, run_ids)
    if dry_run:
        found = _list_runs(candidates)
        return CleanupResult(stuck_runs=found, fixed_count=0, dry_run=True, policy=policy)
    failed, action_id = _fail_runs(
        candidates,
        action_kind=MaintenanceAction.Kind.FAIL_STUCK,
        actor=actor,
        username=username,
        message=settings.TENDEROPS_STUCK_MESSAGE,
        parameters={"policy": policy.as_dict(), "kinds": kinds},
        heartbeat=heartbeat,
    )
    return CleanupResult(
        stuck_runs=failed,
        fixed_count=len(failed),
        dry_run=False,
        policy=policy,
        action_id=action_id,
    )


def mark_runs_failed(
    runs: QuerySet[TenderRun],
    *,
    actor: Actor,
    username: str = "",
    reason: str = "",
    run_ids: Collection[str] | None = None,
) -> MarkFailedResult:
    """Fail the pending or running runs among ``runs``; count the others as skipped.

    With ``run_ids`` (what a confirmation page promised), only those of them.
    """
    reason = reason.strip() or settings.TENDEROPS_STUCK_MESSAGE
    selected = runs.order_by().values("pk")
    total = selected.count()
    candidates = (
        TenderRun.objects.with_run_kind()
        .with_liveness()
        .active()
        .filter(pk__in=selected)
        .annotate(fail_reason=Value(FailReason.MANUAL, output_field=CharField()))
    )
    if run_ids is not None:
        candidates = candidates.filter(pk__in=list(run_ids))
    failed, _action_id = _fail_runs(
        candidates,
        action_kind=MaintenanceAction.Kind.MARK_FAILED,
        actor=actor,
        username=username,
        message=reason,
        parameters={"selected": total},
    )
    return MarkFailedResult(failed=failed, skipped_count=total - len(failed))


def _fail_runs(
    candidates: QuerySet[TenderRun],
    *,
    action_kind: str,
    actor: Actor,
    username: str,
    message: str,
    parameters: dict[str, Any],
    heartbeat: str | None = None,
) -> tuple[list[StuckRun], int | None]:
    """Fail ``candidates`` with ``message`` and audit what that overwrote, atomically; return
    the failed runs and the audit action's id.

    Nothing changed, nothing audited: a quiet monitor tick writes no record.
    """
    audit = AuditEntry(action_kind, actor, username, message, parameters, heartbeat)
    # No savepoint: inside a caller's transaction a failure undoes it all.
    with transaction.atomic(savepoint=False):
        rows = fail_and_audit(candidates, error=settings.TENDEROPS_STUCK_ERROR, audit=audit)
    failed = (
        StuckRun(
            id=row.id,
            project_id=row.project_id,
            kind=row.kind,
            started_at=aware(row.started_at),
            running_minutes=row.running_minutes,
            reason=row.reason,
            silent_minutes=row.silent_minutes,
        )
        for row in rows
    )
    action_id = rows[0].action_id if rows else None
    return sorted(failed, key=lambda run: (run.started_at, run.id)), action_id


def report_stuck_runs(*, heartbeat: str | None = None) -> CleanupResult:
    """Report mode (TENDEROPS_MONITOR_MODE=report): fail nothing, record what would have been
    failed. Each stuck run is recorded once, in a "would fail" audit action, so an operator
    can roll tenderops out on the live table in shadow first and read what it would do."""
    preview = fail_stuck_runs(actor=Actor.SCHEDULE, dry_run=True)
    recorded = set(
        FailedRunRecord.objects.filter(
            action__kind=MaintenanceAction.Kind.WOULD_FAIL,
            run_id__in=[run.id for run in preview.stuck_runs],
        ).values_list("run_id", flat=True)
    )
    new = [run for run in preview.stuck_runs if run.id not in recorded]
    with transaction.atomic():
        if new:
            _record_would_fail(new, preview.policy)
        if heartbeat:
            beat(heartbeat, {"fixed_count": 0, "would_fail": len(preview.stuck_runs)})
    return preview


def _record_would_fail(runs: list[StuckRun], policy: StuckPolicy) -> None:
    action = MaintenanceAction.objects.create(
        kind=MaintenanceAction.Kind.WOULD_FAIL,
        actor=Actor.SCHEDULE,
        parameters={"policy": policy.as_dict(), "runs": len(runs)},
        affected_count=len(runs),
        completed=True,
        finished_at=Now(),
    )
    FailedRunRecord.objects.bulk_create(
        FailedRunRecord(
            action=action,
            run_id=run.id,
            previous_status=RunStatus.PENDING
            if run.reason == FailReason.WAITING
            else RunStatus.RUNNING,
            reason=run.reason,
            silent_minutes=run.silent_minutes,
        )
        for run in runs
    )
