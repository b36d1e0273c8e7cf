"""Retention: delete expired finished runs in short, audited, resumable batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from runs.maintenance.counters import RUNS_PRUNED, increment
from runs.maintenance.db import (
    commit_without_flush_wait,
    db_now,
    gave_way,
    is_postgresql,
    set_local,
)
from runs.maintenance.policy import RetentionPolicy
from runs.models import Actor, MaintenanceAction, TenderRun
from runs.vocabulary import RunStatus

# Prune batches aim at this duration: long enough to amortise each batch's fixed costs, short
# enough that no transaction holds its row locks for long (bench/results.md).
PRUNE_BATCH_SECONDS = 0.25
FIRST_PRUNE_BATCH = 20_000
MIN_PRUNE_BATCH = 1_000
# A batch that meets rows the backend holds waits at most this long, then gives way and is
# tried again: below PostgreSQL's deadlock_timeout (1 s), so that in a deadlock with the
# backend's writes the prune is the one undone, never the backend.
PRUNE_LOCK_WAIT = "300ms"
# A batch's statement that runs longer is cancelled and the batch tried again smaller: sizes
# follow the last batch's pace, and a machine that slows down mid-prune (a checkpoint, the
# backend's load) made one transaction of 1.3 s (bench/results.md, a slow machine at 10 M).
# With the probe of its end and its audit, a batch stays under a second.
PRUNE_STATEMENT_LIMIT = "800ms"
QUERY_CANCELED = "57014"
BATCH_ATTEMPTS = 5


@dataclass
class PruneResult:
    cutoffs: dict[str, datetime]
    deleted: dict[str, int]
    dry_run: bool
    batches: int = 0
    longest_batch_seconds: float = 0.0  # the longest transaction, an undone attempt included
    action_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    @property
    def message(self) -> str:
        counts = {
            "failed_count": self.deleted.get(RunStatus.FAILED, 0),
            "success_count": self.deleted.get(RunStatus.SUCCESS, 0),
        }
        if self.dry_run:
            return (
                _(
                    "Dry run: %(failed_count)d failed and %(success_count)d successful runs "
                    "would be deleted."
                )
                % counts
            )
        return _("Deleted %(failed_count)d failed and %(success_count)d successful runs.") % counts

    def as_dict(self) -> dict[str, Any]:
        # A dry run deleted nothing: its counts are what the prune would delete.
        return {
            "would_delete" if self.dry_run else "deleted": dict(self.deleted),
            "total": self.total,
            "cutoffs": {status: cutoff.isoformat() for status, cutoff in self.cutoffs.items()},
            "batches": self.batches,
            "dry_run": self.dry_run,
            "message": self.message,
        }


def expired_runs(status: str, cutoff: datetime) -> QuerySet[TenderRun]:
    return TenderRun.objects.expired(status, cutoff)


def prune_runs(
    *,
    actor: Actor,
    username: str = "",
    failed_days: int | None = None,
    success_days: int | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[PruneResult], None] | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Delete expired finished runs, one short transaction per batch.

    Each batch commits its delete together with the audit record's running count (and the
    counter ``tenderops_runs_pruned_total{status}``), so a crash
    loses at most the batch in flight, the audit says how far it got, and running the prune
    again simply continues. Batches hold at most ``batch_size`` runs and are sized to take
    about ``PRUNE_BATCH_SECONDS``: on a slow disk they shrink rather than hold locks longer.
    ``now`` (the database's clock by default) sets the cutoffs: a prune confirmed at a prompt
    deletes by its dry run's cutoffs, not also what expired while the operator read it.
    """
    policy = RetentionPolicy.configured(failed_days, success_days, batch_size)
    result = PruneResult(cutoffs=policy.cutoffs(now or db_now()), deleted={}, dry_run=dry_run)
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
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                began = time.perf_counter()
                try:
                    with transaction.atomic():
                        give_way_first()
                        deleted, next_from = _delete_batch(status, cutoff, size, resume_from)
                        if deleted:
                            done = {**result.deleted, status: result.deleted[status] + deleted}
                            audited = replace(result, deleted=done)
                            action = _audit_prune_progress(action, audited, policy, actor, username)
                            increment(RUNS_PRUNED, {"status": status}, deleted)
                    break
                except OperationalError as error:
                    # The backend held rows of the batch (it goes on), or the batch ran too
                    # long: the batch (undone whole) is tried again, smaller.
                    if not _try_smaller(error) or attempt == BATCH_ATTEMPTS:
                        raise
                    size = max(MIN_PRUNE_BATCH, size // 2)
                finally:
                    # Each attempt is a transaction of its own, one undone included.
                    seconds = time.perf_counter() - began
                    result.longest_batch_seconds = max(result.longest_batch_seconds, seconds)
            result.deleted[status] += deleted
            resume_from, more = next_from, next_from is not None
            result.batches += 1
            size = _next_batch_size(size, seconds, policy.batch_size)  # the pace of the last
            if on_batch is not None:
                on_batch(result)
    if action is not None:
        action.completed = True
        action.finished_at = Now()
        action.save(update_fields=["completed", "finished_at"])
        result.action_id = action.pk
    return result


def give_way_first() -> None:
    """This batch's transaction: no wait for its commit's flush, no lock waited for longer
    than PRUNE_LOCK_WAIT and no statement longer than PRUNE_STATEMENT_LIMIT (PostgreSQL)."""
    commit_without_flush_wait()
    if is_postgresql():
        limits = {"lock_timeout": PRUNE_LOCK_WAIT, "statement_timeout": PRUNE_STATEMENT_LIMIT}
        with connection.cursor() as cursor:
            set_local(cursor, limits)


def _try_smaller(error: OperationalError) -> bool:
    """A batch that gave way to the backend, or that its statement limit cancelled."""
    return gave_way(error) or getattr(error.__cause__, "sqlstate", None) == QUERY_CANCELED


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
