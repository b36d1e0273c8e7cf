"""The operators' "mark failed": what its confirmation tells about a selection of runs (which
of them it would fail, which of those a worker may still be working on or picking up) and
the audited failing it confirms. Bounded reads: a selection may be "select all" on a table
of millions."""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value

from runs.infinite_timestamps import AFTER_9999, BEFORE_YEAR_1, INFINITY, MINUS_INFINITY
from runs.maintenance.db import count_at_most, db_now, is_postgresql
from runs.maintenance.failing import fail_stuck_runs, stuck_runs_of, stuck_runs_queryset
from runs.maintenance.failing_statements import AuditEntry, fail_and_audit
from runs.maintenance.liveness import waiting_runs
from runs.maintenance.outcomes import CleanupResult, MarkFailedResult, StuckRun
from runs.maintenance.policy import StuckPolicy
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import FailReason, RunStatus

# One confirmation page fails at most this many runs, and counts the selected runs it skips
# up to SKIPS_COUNTED ("more than" beyond).
MAX_CONFIRMED_RUNS = 1_000
SKIPS_COUNTED = 10_000


@dataclass(frozen=True)
class Promise:
    """The runs a confirmation page promised to fail, each as it was then, and when.

    A run started again since (its ``started_at`` changed) is another life of it, and a run
    failed since (by this page confirmed twice, or by the monitor) is spent, whatever a worker
    did with it next: confirming fails neither."""

    starts: Mapping[str, datetime | None]
    made_at: datetime


def promise_of(run_ids: Collection[str]) -> Promise:
    """The promise to fail ``run_ids`` as they are now."""
    made_at = db_now()
    lives = dict(TenderRun.objects.filter(pk__in=list(run_ids)).values_list("pk", "started_at"))
    return Promise(starts={pk: lives.get(pk) for pk in run_ids}, made_at=made_at)


# A failing that started this long before a page was made may have committed after it: its
# runs count as failed since the page (a batch takes at most seconds, a lock wait 10).
FAILED_SINCE_MARGIN = timedelta(minutes=1)


def kept_by(promise: Promise) -> Q:
    """The runs ``promise`` still holds: promised, in the life promised, not failed since
    (report mode's "would fail" records fail nothing)."""
    lives = [_in_life(pk, start) for pk, start in promise.starts.items()]
    failed_since = FailedRunRecord.objects.of_failings().filter(
        run_id=OuterRef("pk"), action__started_at__gte=promise.made_at - FAILED_SINCE_MARGIN
    )
    return (
        Q(pk__in=list(promise.starts))
        & reduce(operator.or_, lives, Q(pk__in=[]))
        & ~Exists(failed_since)
    )


SQLITE_TIME_GRAIN = timedelta(milliseconds=1)


def _in_life(run_id: str, start: datetime | None) -> Q:
    """The run in the life that started at ``start``. A start Python cannot hold was read as
    the end it lies beyond (runs.infinite_timestamps): the run must still lie beyond it (a
    worker starting it again gives it a real start). None: not in the table when promised."""
    if start is None:
        return Q(pk=run_id)
    if not is_postgresql():
        # SQLite (the demo) compares times as text, and its column default writes
        # milliseconds where a bound value has microseconds: the same start to the millisecond.
        return Q(
            pk=run_id, started_at__range=(start - SQLITE_TIME_GRAIN, start + SQLITE_TIME_GRAIN)
        )
    if start in (INFINITY, AFTER_9999):
        return Q(pk=run_id, started_at__gt=INFINITY)
    if start in (MINUS_INFINITY, BEFORE_YEAR_1):
        return Q(pk=run_id, started_at__lt=MINUS_INFINITY)
    return Q(pk=run_id, started_at=start)


def clean_up_promised(
    promise: Promise,
    *,
    actor: Actor,
    username: str,
    timeout_minutes: int | None = None,
    kinds: Sequence[str] = (),
) -> CleanupResult:
    """A cleanup's confirmation (the admin's page, the command's prompt): of the runs it
    listed, those still stuck now, in the life it listed and not failed since (a page posted
    again, or a run the monitor failed and a worker revived while the operator read, is not
    failed again)."""
    return fail_stuck_runs(
        actor=actor,
        username=username,
        timeout_minutes=timeout_minutes,
        kinds=kinds,
        condition=kept_by(promise),  # the promised ids among them
    )


def promise_of_listed(runs: Sequence[StuckRun], made_at: datetime) -> Promise:
    """The promise to fail ``runs`` as a listing read them (each start as it was then)."""
    return Promise(starts={run.id: run.started_at for run in runs}, made_at=made_at)


def present_among(run_ids: Collection[str]) -> int:
    """How many of ``run_ids`` are in the table (the backend deletes a project's runs with
    it: a listed run may be gone by the time it is acted on)."""
    return TenderRun.objects.filter(pk__in=list(run_ids)).count()


def gone_of_the_rest(listed_ids: Collection[str], result: CleanupResult) -> int:
    """Of the runs a page or prompt listed and ``result`` did not fail, how many are no
    longer in the table (a run failed and then deleted counts as failed only)."""
    rest = set(listed_ids) - {run.id for run in result.stuck_runs}
    return len(rest) - present_among(rest)


def selection_counted(selected: QuerySet[TenderRun], failing: int) -> int:
    """How many runs ``selected`` holds, counted only as far as a confirmation reports the
    runs it skips beside the ``failing`` it fails (SKIPS_COUNTED, and one more to know)."""
    return count_at_most(selected, failing + SKIPS_COUNTED + 1)


def bounded_skips(skipped: int) -> tuple[int, bool]:
    """The skipped runs as said (at most SKIPS_COUNTED), and whether there are more."""
    skipped = max(skipped, 0)
    return min(skipped, SKIPS_COUNTED), skipped > SKIPS_COUNTED


def impossible_starts_at_most(cap: int) -> int:
    """How many active runs have an impossible start, counted to ``cap``."""
    return count_at_most(TenderRun.objects.beyond_the_monitor(), cap)


def active_ids(queryset: QuerySet[TenderRun], cap: int) -> list[str]:
    """The selection's runs a confirmation would fail, one more than ``cap`` at most."""
    active = queryset.order_by().active().order_by("pk").values_list("pk", flat=True)
    return list(active[: cap + 1])


def running_not_stuck(run_ids: list[str]) -> set[str]:
    """Of ``run_ids``, the running runs that are not stuck: their workers may be alive. A run
    with an impossible start (future, infinite) is no sign of a live worker: not counted."""
    running = (
        TenderRun.objects.filter(pk__in=run_ids).plausible().running().values_list("pk", flat=True)
    )
    return set(running) - stuck_among(run_ids)


def stuck_among(run_ids: list[str]) -> set[str]:
    """Of ``run_ids`` (a page's runs), those the configured rule calls stuck now."""
    if not run_ids:
        return set()
    stuck = stuck_runs_queryset(StuckPolicy.configured(), run_ids=run_ids)
    return set(stuck.values_list("pk", flat=True))


def pending_not_waiting(run_ids: list[str]) -> set[str]:
    """Of ``run_ids``, the pending runs not yet waiting too long: a worker may still pick
    them up (TENDEROPS_PENDING_ALERT_MINUTES)."""
    pending = TenderRun.objects.filter(pk__in=run_ids, status=RunStatus.PENDING).plausible()
    waiting = waiting_runs().filter(pk__in=run_ids).values("pk")
    return set(pending.exclude(pk__in=waiting).values_list("pk", flat=True))


def mark_runs_failed(
    runs: QuerySet[TenderRun],
    *,
    actor: Actor,
    username: str = "",
    reason: str = "",
    promise: Promise | None = None,
) -> MarkFailedResult:
    """Fail the pending or running runs among ``runs``; count the others as skipped.

    With ``promise`` (a confirmation page's), only the runs it still holds; a promised run
    that left the selection meanwhile (the monitor failed it, a filter on status no longer
    matches), was started again or was failed since is skipped too, and one deleted
    meanwhile is counted as gone.
    """
    reason = reason.strip() or settings.TENDEROPS_MARK_FAILED_MESSAGE
    if runs.query.is_empty():  # .none(): its SQL cannot be written into the failing statement
        return MarkFailedResult(failed=[], skipped_count=0)
    selected = runs.order_by().values("pk")
    # A confirmed selection's skipped runs are counted to a bound: "select all" may hold
    # millions of finished runs, and the page promised at most MAX_CONFIRMED_RUNS.
    run_ids = None if promise is None else list(promise.starts)
    total = selected.count() if run_ids is None else selection_counted(selected, len(run_ids))
    gone = 0
    if run_ids is not None:
        still_there = present_among(run_ids)
        total += still_there - selected.filter(pk__in=run_ids).count()
        gone = len(run_ids) - still_there
    candidates = (
        TenderRun.objects.with_run_kind()
        .with_liveness()
        .active()
        .filter(pk__in=selected)
        .annotate(fail_reason=Value(FailReason.MANUAL, output_field=CharField()))
    )
    if promise is not None:
        candidates = candidates.filter(kept_by(promise))
    failed = _fail_runs(
        candidates,
        action_kind=MaintenanceAction.Kind.MARK_FAILED,
        actor=actor,
        username=username,
        message=reason,
        parameters={"selected": total},
    )
    skipped, more = bounded_skips(total - len(failed))
    if run_ids is None:  # counted whole
        skipped, more = max(total - len(failed), 0), False
    return MarkFailedResult(
        failed=failed, skipped_count=skipped, gone_count=gone, skipped_more=more
    )


def _fail_runs(
    candidates: QuerySet[TenderRun],
    *,
    action_kind: str,
    actor: Actor,
    username: str,
    message: str,
    parameters: dict[str, Any],
) -> list[StuckRun]:
    """Fail ``candidates`` with ``message`` and audit what that overwrote, atomically; return
    the failed runs.

    Nothing changed, nothing audited: a quiet monitor tick writes no record.
    """
    audit = AuditEntry(action_kind, actor, username, message, parameters)
    # No savepoint: inside a caller's transaction a failure undoes it all.
    with transaction.atomic(savepoint=False):
        rows = fail_and_audit(candidates, error=settings.TENDEROPS_MARK_FAILED_ERROR, audit=audit)
    return sorted(stuck_runs_of(rows), key=lambda run: (run.started_at, run.id))
