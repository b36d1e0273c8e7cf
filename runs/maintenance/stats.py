"""The stats page's figures: counts by status and kind, durations, failures, runs per day,
runs failed by tenderops per day and kind. Days are days in TENDEROPS_TIME_ZONE."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property

from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Extract, Left, Now, TruncDate
from django.utils import timezone

from runs.limits import STATS_WINDOWS
from runs.maintenance.db import db_now, is_postgresql, local_settings
from runs.maintenance.heartbeat import (
    MonitorHealth,
    monitor_health,
    running_and_stuck,
    with_live_heartbeat,
)
from runs.maintenance.policy import StuckPolicy
from runs.models import FailedRunRecord, MaintenanceAction, TenderRun
from runs.models.tender import plausible_finish
from runs.vocabulary import FINISHED_STATUSES, RunStatus

DURATION_WINDOW = timedelta(days=30)
# Durations come from at most this many of the most recent successful runs: a bounded read
# however large the table, and plenty for a p95.
DURATION_SAMPLE = 50_000
DAILY_WINDOW_DAYS = 30
TOP_ERRORS = 5
ERROR_PREVIEW_CHARS = 200
# The kind shown for an audited run that retention has pruned since.
PRUNED_KIND = "?"
# A suggested timeout leaves 20 % above the longest run seen: the next run may be longer.
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
        """The longest recent successful run plus 20 %: a timeout that would have failed
        none of them."""
        return suggested_timeout(self.max_minutes)


def suggested_timeout(longest_minutes: float) -> int:
    """A timeout in whole minutes with room above the longest run seen (SUGGESTION_HEADROOM),
    never below MIN_SUGGESTED_MINUTES."""
    return max(MIN_SUGGESTED_MINUTES, math.ceil(longest_minutes * SUGGESTION_HEADROOM))


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
    durations: list[KindDurations]
    failures: list[WindowFailures]
    # Plausible runs per day started (in TENDEROPS_TIME_ZONE), by status, oldest day first.
    daily: list[tuple[date, dict[str, int]]]
    # Runs tenderops failed (the monitor, the CLI, the API, the admin) per day, by kind.
    failed_by_tenderops: list[tuple[date, dict[str, int]]]
    health: MonitorHealth
    impossible_starts: int

    # The cards' figures, as the health endpoint has them.
    @property
    def running(self) -> int:
        return self.health.running_count

    @property
    def stuck(self) -> int:
        return self.health.stuck_count

    @property
    def monitor_starting(self) -> bool:
        """The monitor has not ticked yet since its schedule was made: no alarm yet."""
        return self.health.starting

    def count(self, status: str, kind: str) -> int:
        return self.counts.get((status, kind), 0)

    def status_total(self, status: str) -> int:
        return self._status_totals[status]

    def kind_total(self, kind: str) -> int:
        return self._kind_totals[kind]

    # Summed once: the backend may write thousands of statuses and kinds (the attacker).
    @cached_property
    def _status_totals(self) -> Counter[str]:
        return self._summed_by(0)

    @cached_property
    def _kind_totals(self) -> Counter[str]:
        return self._summed_by(1)

    def _summed_by(self, part: int) -> Counter[str]:
        """The counts added up by the status (0) or the kind (1) of their key."""
        totals: Counter[str] = Counter()
        for key, count in self.counts.items():
            totals[key[part]] += count
        return totals

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def daily_failure_rates(self) -> list[tuple[date, int, int]]:
        """Per day: (day, failed, finished), finished being successful or failed runs."""
        return [
            (
                day,
                counts.get(RunStatus.FAILED, 0),
                sum(counts.get(status, 0) for status in FINISHED_STATUSES),
            )
            for day, counts in self.daily
        ]


def collect_stats() -> RunStats:
    """Everything the stats page shows. Only the status x kind table reads the whole table
    (one GROUP BY, as operators ran it by hand); the rest reads bounded windows by index."""
    now = db_now()
    with local_settings(jit="off"):
        counts = _counts_by_status_and_kind()
        with local_settings(enable_seqscan="off"):
            daily, failures = _recent_activity(now)
            durations = _durations_by_kind(now - DURATION_WINDOW)
        failed_by_tenderops = _failed_by_tenderops(now)
    health = monitor_health()
    return RunStats(
        counts=counts,
        statuses=_ordered(RunStatus.values, {status for status, _k in counts}),
        kinds=_ordered((), {kind for _s, kind in counts}),
        durations=durations,
        failures=failures,
        daily=daily,
        failed_by_tenderops=failed_by_tenderops,
        health=health,
        impossible_starts=TenderRun.objects.beyond_the_monitor().count(),
    )


def with_live_cards(stats: RunStats) -> RunStats:
    """``stats`` (a snapshot) with what its cards call "now" read now: the monitor's health
    and the running and stuck runs (counted by index, as the health endpoint does). After a
    tick failed runs, a "12 stuck now" minutes old beside the monitor's "OK" told operators
    the monitor had not worked."""
    return replace(stats, health=replace(with_live_heartbeat(stats.health), **running_and_stuck()))


def failed_since(moment: datetime) -> int:
    """How many runs tenderops failed after ``moment`` (a snapshot's): runs its figures do
    not count yet."""
    actions = MaintenanceAction.objects.filter(
        kind__in=MaintenanceAction.FAILING_KINDS, started_at__gt=moment
    )
    return actions.aggregate(total=Sum("affected_count"))["total"] or 0


def local_days(now: datetime, count: int) -> tuple[list[date], datetime]:
    """The last ``count`` days in TENDEROPS_TIME_ZONE up to ``now``'s, oldest first, and the
    moment the first of them began."""
    zone = timezone.get_default_timezone()
    today = timezone.localtime(now, zone).date()
    days = [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
    return days, datetime.combine(days[0], datetime.min.time(), tzinfo=zone)


def _ordered(first: Sequence[str], present: set[str | None]) -> list[str | None]:
    # None (a table that lets a run lack a status or a type: named by the health check) last.
    rest = sorted(present - set(first), key=lambda value: (value is None, value or ""))
    return [*(v for v in first if v in present), *rest]


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
    """The most recent successful runs, newest first: one bounded index range. Each is
    counted (as the list behind the count counts it) and ``timed`` if its finish can be
    true: a run said to finish before it started had a negative "duration" that skewed
    every percentile of its kind (and drew a bar of negative width)."""
    return (
        TenderRun.objects.with_run_kind()
        .plausible()
        .filter(status=RunStatus.SUCCESS, started_at__gte=since)
        .annotate(timed=Case(When(plausible_finish(), then=True), default=False))
        .order_by("-started_at")
    )


def _duration_percentiles_postgresql(since: datetime) -> list[tuple[str, int, float, float, float]]:
    sql, params = (
        _recent_successes(since)
        .annotate(
            seconds=Case(
                When(timed=True, then=Extract(F("finished_at") - F("started_at"), "epoch"))
            )
        )
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
        return [
            (k, n, float(p50), float(p95), float(m))
            for k, n, p50, p95, m in cursor.fetchall()
            if m is not None  # a kind none of whose runs has a true finish: nothing to time
        ]


def _duration_percentiles_portable(since: datetime) -> list[tuple[str, int, float, float, float]]:
    counted: Counter[str] = Counter()
    by_kind: dict[str, list[float]] = {}
    rows = _recent_successes(since).values_list("run_kind", "started_at", "finished_at", "timed")
    for kind, started, finished, timed in rows[:DURATION_SAMPLE]:
        counted[kind] += 1
        if timed:
            by_kind.setdefault(kind, []).append((finished - started).total_seconds())
    return [
        (kind, counted[kind], _percentile(values, 0.5), _percentile(values, 0.95), max(values))
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
    days, first_midnight = local_days(now, DAILY_WINDOW_DAYS)
    since = min(first_midnight, now - max(STATS_WINDOWS.values()))
    window_counts = {
        f"in_{name}": Count("pk", filter=Q(started_at__gte=now - span))
        for name, span in STATS_WINDOWS.items()
    }
    rows = (
        TenderRun.objects.plausible()
        .filter(started_at__gte=since)
        .annotate(day=TruncDate("started_at", tzinfo=timezone.get_default_timezone()))
        .order_by()
        .values("day", "status")
        .annotate(total=Count("pk"), **window_counts)
    )
    per_day: dict[date, dict[str, int]] = {day: {} for day in days}
    finished = dict.fromkeys(STATS_WINDOWS, 0)
    failed = dict.fromkeys(STATS_WINDOWS, 0)
    for row in rows:
        if row["day"] in per_day:
            per_day[row["day"]][row["status"]] = row["total"]
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
            top_errors=top_errors(now - span),
        )
        for name, span in STATS_WINDOWS.items()
    ]
    return sorted(per_day.items()), failures


def error_preview() -> Coalesce:
    """A run's error as failures are grouped (stats, spikes) and the runs list's error filter
    matches them: its first ERROR_PREVIEW_CHARS characters, "" for none."""
    return Coalesce(Left("error", ERROR_PREVIEW_CHARS), Value(""))


def top_errors(
    since: datetime | Now, *, kind: str | None = None, limit: int = TOP_ERRORS
) -> list[tuple[str, int]]:
    """The most frequent error texts of the failed runs started since ``since`` (of ``kind``
    only, if given), with their counts."""
    failed = TenderRun.objects.plausible().filter(status=RunStatus.FAILED, started_at__gte=since)
    if kind is not None:
        failed = failed.with_run_kind().filter(run_kind=kind)
    return list(
        failed.annotate(error_text=error_preview())
        .order_by()
        .values_list("error_text")
        .annotate(total=Count("pk"))
        .order_by("-total", "error_text")[:limit]
    )


def _failed_by_tenderops(now: datetime) -> list[tuple[date, dict[str, int]]]:
    """Runs tenderops failed per day (in TENDEROPS_TIME_ZONE) and kind over the daily window,
    from its audit log: are workers dying more often? Reads the window's audit records by
    index and looks each run's kind up by primary key; a run pruned since counts as "?"."""
    days, since = local_days(now, DAILY_WINDOW_DAYS)
    kind_of_run = (
        TenderRun.objects.with_run_kind().filter(pk=OuterRef("run_id")).values("run_kind")[:1]
    )
    rows = (
        FailedRunRecord.objects.of_failings()
        .filter(action__started_at__gte=since)
        .annotate(
            day=TruncDate("action__started_at", tzinfo=timezone.get_default_timezone()),
            kind=Coalesce(
                Subquery(kind_of_run, output_field=TextField()),
                Value(PRUNED_KIND, output_field=TextField()),
            ),
        )
        .order_by()
        .values("day", "kind")
        # Runs, as the heading and the link behind each count say: a run failed, started
        # again and failed again the same day is one.
        .annotate(total=Count("run_id", distinct=True))
    )
    per_day: dict[date, dict[str, int]] = {day: {} for day in days}
    for row in rows:
        if row["day"] in per_day:
            per_day[row["day"]][row["kind"]] = row["total"]
    return sorted(per_day.items())
