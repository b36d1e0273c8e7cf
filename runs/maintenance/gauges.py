"""What /metrics reads of the runs at scrape time: the active runs only, found by index (a
scrape never reads finished runs, however many the table holds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min

from runs.adoption import shape_problems
from runs.maintenance.db import aware, db_now, fetch_compiled
from runs.maintenance.heartbeat import MONITOR, RETENTION, monitor_starting_at
from runs.maintenance.liveness import waiting_runs
from runs.maintenance.policy import StuckPolicy
from runs.models import Heartbeat, TenderRun
from runs.vocabulary import ACTIVE_STATUSES


@dataclass(frozen=True)
class ActiveRuns:
    """The pending and running runs as a scrape sees them."""

    by_status_and_kind: dict[tuple[str, str], int]
    stuck_by_kind: dict[str, int]
    waiting_by_kind: dict[str, int]
    oldest_seconds: dict[str, float]  # per active status; 0 when there is none
    monitor_last_success: datetime | None
    retention_last_success: datetime | None
    monitor_starting: bool  # a fresh install not ticked yet (health says "starting")
    table_problems: int  # tender_runs' column types tenderops would misjudge (runs.adoption)


def active_runs() -> ActiveRuns:
    now = db_now()
    counts = fetch_compiled(
        "gauge-active",
        lambda: (
            TenderRun.objects.with_run_kind()
            .active()
            .order_by()
            .values_list("status", "run_kind")
            .annotate(total=Count("pk"))
        ),
    )
    oldest = fetch_compiled(
        "gauge-oldest",
        lambda: (
            TenderRun.objects.active()
            .plausible()
            .order_by()
            .values_list("status")
            .annotate(first=Min("started_at"))
        ),
    )
    oldest_start = {status: aware(first) for status, first in oldest}
    beats = dict(
        Heartbeat.objects.filter(name__in=[MONITOR, RETENTION]).values_list(
            "name", "last_finished_at"
        )
    )
    return ActiveRuns(
        by_status_and_kind={(status, kind): total for status, kind, total in counts},
        stuck_by_kind=stuck_runs_by_kind(),
        waiting_by_kind=waiting_runs_by_kind(),
        oldest_seconds={
            status: max(0.0, (now - oldest_start[status]).total_seconds())
            if status in oldest_start
            else 0.0
            for status in ACTIVE_STATUSES
        },
        monitor_last_success=beats.get(MONITOR),
        retention_last_success=beats.get(RETENTION),
        monitor_starting=MONITOR not in beats and monitor_starting_at(now),
        table_problems=len(shape_problems(connection)),
    )


def stuck_runs_by_kind() -> dict[str, int]:
    policy = StuckPolicy.configured()
    rows = fetch_compiled(
        ("gauge-stuck", json.dumps(policy.as_dict(), sort_keys=True)),
        lambda: (
            TenderRun.objects.stuck(policy)
            .order_by()
            .values_list("run_kind")
            .annotate(total=Count("pk"))
        ),
    )
    return dict(rows)


def waiting_runs_by_kind() -> dict[str, int]:
    """``tenderops_waiting_runs{kind}``: the waiting runs (``liveness.waiting_runs``: pending
    and silent longer than ``TENDEROPS_PENDING_ALERT_MINUTES``), per kind."""
    rows = fetch_compiled(
        ("gauge-waiting", settings.TENDEROPS_PENDING_ALERT_MINUTES),
        lambda: waiting_runs().order_by().values_list("run_kind").annotate(total=Count("pk")),
    )
    return dict(rows)
