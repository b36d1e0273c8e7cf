"""The stats page's figures: counts by status and kind, durations, failures, runs per day."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Extract, Left, Now, TruncDate

from runs.limits import EARLIEST_START, START_SKEW
from runs.maintenance.db import db_now, is_postgresql, local_settings
from runs.maintenance.heartbeat import MonitorHealth, monitor_health
from runs.maintenance.policy import StuckPolicy
from runs.models import TenderRun
from runs.vocabulary import FINISHED_STATUSES, RunStatus

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
    impossible_starts: int

    def count(self, status: str, kind: str) -> int:
        return self.counts.get((status, kind), 0)


def collect_stats() -> RunStats:
    """Everything the stats page shows. Only the status x kind table reads the whole table
    (one GROUP BY, as operators ran it by hand); the rest reads bounded windows by index."""
    now = db_now()
    with local_settings(jit="off"):
        counts = _counts_by_status_and_kind()
        with local_settings(enable_seqscan="off"):
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
        impossible_starts=TenderRun.objects.impossible_start().count(),
    )


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
    if is_postgresql():
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
        .plausible()
        .filter(
            status=RunStatus.SUCCESS,
            started_at__gte=since,
            finished_at__gte=EARLIEST_START,
            finished_at__lt=Now() + START_SKEW,
        )
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
        TenderRun.objects.plausible()
        .filter(started_at__gte=since)
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
            if row["status"] == RunStatus.FAILED:
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
        TenderRun.objects.plausible()
        .filter(status=RunStatus.FAILED, started_at__gte=since)
        .annotate(error_text=Coalesce(Left("error", ERROR_PREVIEW_CHARS), Value("")))
        .order_by()
        .values_list("error_text")
        .annotate(total=Count("pk"))
        .order_by("-total", "error_text")[:TOP_ERRORS]
    )
