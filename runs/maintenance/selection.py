"""What a confirmation of "mark failed" tells the operator about a selection of runs: which
of them it would fail, and which of those a worker may still be working on or picking up.
Bounded reads: a selection may be "select all" on a table of millions."""

from __future__ import annotations

from django.db.models import QuerySet

from runs.maintenance.db import count_at_most
from runs.maintenance.failing import stuck_runs_queryset
from runs.maintenance.liveness import waiting_runs
from runs.maintenance.policy import StuckPolicy
from runs.models import TenderRun
from runs.vocabulary import RunStatus


def impossible_starts_at_most(cap: int) -> int:
    """How many runs have an impossible start, counted to ``cap``."""
    return count_at_most(TenderRun.objects.impossible_start(), cap)


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
    stuck = stuck_runs_queryset(StuckPolicy.configured(), run_ids=run_ids).values("pk")
    return set(running.exclude(pk__in=stuck))


def pending_not_waiting(run_ids: list[str]) -> set[str]:
    """Of ``run_ids``, the pending runs not yet waiting too long: a worker may still pick
    them up (TENDEROPS_PENDING_ALERT_MINUTES)."""
    pending = TenderRun.objects.filter(pk__in=run_ids, status=RunStatus.PENDING).plausible()
    waiting = waiting_runs().filter(pk__in=run_ids).values("pk")
    return set(pending.exclude(pk__in=waiting).values_list("pk", flat=True))
