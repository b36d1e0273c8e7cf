"""Report mode (TENDEROPS_MONITOR_MODE=report): the monitor fails nothing and records what it
would have failed, so that tenderops can run in shadow on the live table first."""

from __future__ import annotations

from django.db import transaction
from django.db.models.functions import Now

from runs.maintenance.failing import CleanupResult, StuckRun, fail_stuck_runs
from runs.maintenance.heartbeat import beat
from runs.maintenance.policy import StuckPolicy
from runs.models import Actor, FailedRunRecord, MaintenanceAction
from runs.vocabulary import FailReason, RunStatus


def report_stuck_runs(*, heartbeat: str | None = None) -> CleanupResult:
    """Report mode (TENDEROPS_MONITOR_MODE=report): fail nothing, record what would have been
    failed. Each stuck run is recorded once, in a "would fail" audit action, so an operator
    can roll tenderops out on the live table in shadow first and read what it would do."""
    preview = fail_stuck_runs(actor=Actor.SCHEDULE, dry_run=True, list_limit=None)
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
