"""Late finishes: runs tenderops failed that a worker later set to success. The worker was
alive after all and the kind's timeout too short: the sweep notes them (for the counter and
the alert), the stats page counts them per kind and the runs list filters them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Now

from runs.limits import STATS_WINDOWS
from runs.maintenance.db import db_now
from runs.models import FailedRunRecord, TenderRun
from runs.vocabulary import RunStatus


def late_finishes() -> QuerySet[FailedRunRecord]:
    """Runs tenderops failed (by a tick, a command, the API or a person) that a worker later
    set to success: the worker was alive after all, and the kind's timeout too short."""
    finished = TenderRun.objects.filter(pk=OuterRef("run_id"), status=RunStatus.SUCCESS)
    return FailedRunRecord.objects.of_failings().filter(Exists(finished))


def late_finish_window() -> timedelta:
    """How long after failing a run its success is noted as a late finish: a worker alive
    longer than TENDEROPS_MAX_RUN_MINUTES would have been failed anyway."""
    return timedelta(minutes=settings.TENDEROPS_MAX_RUN_MINUTES)


def _unnoted_late_finishes(window: timedelta | None) -> QuerySet[FailedRunRecord]:
    return late_finishes().filter(
        finished_late_at__isnull=True,
        action__started_at__gte=Now() - (window or late_finish_window()),
    )


def late_finished_run_ids(window: timedelta | None = None) -> list[str]:
    """The run ids of the late finishes an operator is shown: those the sweep noted (through
    their partial index) and those of runs failed within ``window`` (by default
    ``late_finish_window()``) that it has yet to note, which it will. Not every audited run:
    the audit grows with every failing, and checking each for a success cost the admin's
    filter 1.4 s a page with 28,000 records of days ago (bench database of 1 M runs). A
    list, so that the runs are then read by primary key whatever the planner thinks of the
    audit."""
    noted = FailedRunRecord.objects.filter(finished_late_at__isnull=False)
    fresh = _unnoted_late_finishes(window)
    return list(noted.values_list("run_id", flat=True).union(fresh.values_list("run_id")))


def note_late_finishes(window: timedelta | None = None) -> list[FailedRunRecord]:
    """Stamp the late finishes of runs failed within ``window`` (by default
    ``late_finish_window()``) that were not yet noted, and return them (the sweep that feeds
    counters and alerts; runs every few minutes)."""
    fresh = _unnoted_late_finishes(window)
    with transaction.atomic():
        noted = list(fresh.select_for_update(of=("self",), skip_locked=True))
        now = db_now()
        for record in noted:
            record.finished_late_at = now
        FailedRunRecord.objects.bulk_update(noted, ["finished_late_at"])
    return noted


def noted_late_finishes_by_kind_and_window() -> QuerySet:
    """The late finishes the sweep has noted (``note_late_finishes``, every few minutes; the
    same ones ``tenderops_late_finishes_total`` counts), by kind and window. Read through the
    partial index of noted records: checking every audited run of 30 days for a success
    cost the stats page 0.9 s at 10 M after a fleet-wide crash (900,000 audit records)."""
    run_kind = TenderRun.objects.with_run_kind().filter(pk=OuterRef("run_id")).values("run_kind")
    windows = {
        f"in_{name}": Count("run_id", distinct=True, filter=Q(action__started_at__gte=Now() - span))
        for name, span in STATS_WINDOWS.items()
    }
    longest = max(STATS_WINDOWS.values())
    return (
        FailedRunRecord.objects.filter(finished_late_at__isnull=False)
        # Implied (noted after the action started), and the index's range.
        .filter(finished_late_at__gte=Now() - longest)
        .filter(action__started_at__gte=Now() - longest)
        .annotate(kind=Subquery(run_kind[:1]))
        .order_by()
        .values("kind")
        .annotate(**windows)
    )
