"""Report mode (TENDEROPS_MONITOR_MODE=report): the monitor fails nothing and records what it
would have failed, so that tenderops can run in shadow on the live table first."""

from __future__ import annotations

from dataclasses import replace

from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Now

from runs.maintenance.db import is_postgresql
from runs.maintenance.failing import (
    CleanupResult,
    StuckRun,
    fail_stuck_runs,
    list_runs,
    stuck_runs_queryset,
)
from runs.maintenance.heartbeat import beat
from runs.maintenance.policy import StuckPolicy
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import FailReason, RunStatus

# The most stuck runs one tick records as "would fail"; a fleet's crash is recorded over the
# next ticks, in memory bounded whatever its size (each tick read all of them: 100,000 runs
# and a list of their ids, every minute).
RECORDED_PER_TICK = 10_000
RECORDER_LOCK = 7_451_900_004


def report_stuck_runs(*, heartbeat: str | None = None) -> CleanupResult:
    """Report mode (TENDEROPS_MONITOR_MODE=report): fail nothing, record what would have been
    failed. Each stuck run is recorded once each time it gets stuck, in a "would fail" audit
    action, so an operator can roll tenderops out on the live table in shadow first and read
    what it would do. The result lists the first runs and counts every one by kind."""
    preview = fail_stuck_runs(actor=Actor.SCHEDULE, dry_run=True)
    stuck = stuck_runs_queryset(preview.policy)
    counts = dict(stuck.order_by().values_list("run_kind").annotate(n=Count("pk")))
    recorded = FailedRunRecord.objects.filter(
        run_id=OuterRef("pk"), action__kind=MaintenanceAction.Kind.WOULD_FAIL
    ).filter(_same_stuck_spell())
    total = sum(counts.values())
    with transaction.atomic():
        # One recorder at a time, each after the last committed: ticks that piled up (a table
        # locked for minutes) recorded every run once each.
        if is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECORDER_LOCK])
        new = list_runs(stuck.filter(~Exists(recorded)), RECORDED_PER_TICK)
        if new:
            _record_would_fail(new, preview.policy)
        if heartbeat:
            beat(heartbeat, {"fixed_count": 0, "would_fail": total})
    return replace(preview, found_count=total, counts_by_kind=counts)


def _same_stuck_spell() -> Q:
    """A "would fail" record of a run's present spell of being stuck. A record from before
    its last sign of life is of an earlier one: it wrote again since, and went silent again
    (recorded once only, it stayed stuck unreported). A run over the maximum runtime, or too
    old under the ``age`` rule, is stuck whatever it writes: its spell lasts from its start."""
    return Q(action__started_at__gte=OuterRef("last_sign_of_life")) | Q(
        reason__in=[FailReason.MAX_RUNTIME, FailReason.AGE],
        action__started_at__gte=OuterRef("started_at"),
    )


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
    # What each run said when recorded, as a failing would keep it (read in the database: a
    # message may be a megabyte); a run deleted meanwhile keeps the status it was judged in.
    run = TenderRun.objects.filter(pk=OuterRef("run_id"))
    FailedRunRecord.objects.filter(action=action).update(
        previous_status=Coalesce(Subquery(run.values("status")[:1]), F("previous_status")),
        previous_message=Subquery(run.values("message")[:1]),
        previous_error=Subquery(run.values("error")[:1]),
    )
