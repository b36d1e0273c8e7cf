"""The stats page's snapshot: its figures computed off the request path, read by every viewer.

Computing the figures reads the whole table once (the status x kind GROUP BY): a refresh
took 10 s at 10 M runs in bench/results.md, most of it that scan, and holds one transaction
for as long (its counts are of one moment). The cluster pays that at most about once per
TENDEROPS_STATS_MAX_AGE_SECONDS (a one-minute schedule refreshes the snapshot only when it
falls due, early enough that it is never older than that), and staff may refresh it on
demand (spaced by MANUAL_SPACING); any number of viewers read one row. The counts are
exact as of ``computed_at``: every query of a refresh sees the same snapshot of the database
(REPEATABLE READ), taken at that moment. A refresh that fails keeps the last figures and
records the error; readers then learn that the figures are stale, and how old. Projects the
backend deletes (their runs go with them) leave no count behind past the next refresh: each
refresh counts everything anew.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction

from runs.maintenance.db import aware, db_now, is_postgresql
from runs.maintenance.heartbeat import MonitorHealth
from runs.maintenance.stats import KindDurations, RunStats, WindowFailures, collect_stats
from runs.models import StatsSnapshot

logger = logging.getLogger(__name__)

SNAPSHOT = "stats"
# The transaction-level advisory lock refreshers take (an arbitrary key): one at a time.
REFRESH_LOCK = 7_451_900_002
# How much earlier than its maximum age the schedule refreshes a snapshot: its one-minute
# interval plus the scheduler's 30-second wake-ups (plus the last refresh's own duration).
SCHEDULE_LEAD = timedelta(seconds=90)
# A "refresh now" sooner than this after the last refresh shows that one instead; and sooner
# than so many times the last refresh's own duration: staff clicking on (view permission is
# enough) cost the database at most a sixth of one core (a refresh reads the whole table).
MANUAL_MIN_INTERVAL = timedelta(seconds=10)
MANUAL_SPACING = 6
# A first viewer that meets another refresher waits for it, then refreshes itself if it
# failed: at most so many rounds.
FIRST_READ_ATTEMPTS = 3


class StatsReading(NamedTuple):
    stats: RunStats
    computed_at: datetime  # the figures are exact as of this moment
    stale: bool  # older than TENDEROPS_STATS_MAX_AGE_SECONDS: the refresh has not happened


def max_age() -> timedelta:
    return timedelta(seconds=settings.TENDEROPS_STATS_MAX_AGE_SECONDS)


def refresh_stats_snapshot() -> datetime | None:
    """Compute the figures and store them; return their moment, or None when another
    refresher was at it (its figures are as fresh). A failure is recorded, then raised."""
    began = time.monotonic()
    # One snapshot of the database for every query (unless a caller's transaction is open).
    own_transaction = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if is_postgresql():
                with connection.cursor() as cursor:
                    if own_transaction:
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [REFRESH_LOCK])
                    if not cursor.fetchone()[0]:
                        return None
            computed_at = _transaction_start()
            stats = collect_stats()
            StatsSnapshot.objects.update_or_create(
                name=SNAPSHOT,
                defaults={
                    "computed_at": computed_at,
                    "data": stats_to_json(stats),
                    "seconds": time.monotonic() - began,
                    "last_attempt_at": computed_at,
                    "last_error": "",
                },
            )
        return computed_at
    except Exception as error:
        logger.exception("the stats snapshot could not be refreshed")
        _record_failure(error)
        raise


def refresh_stats_snapshot_if_due() -> datetime | None:
    """The schedule's step (every minute): refresh only when the snapshot would otherwise
    outlive its maximum age before the next step."""
    row = StatsSnapshot.objects.filter(name=SNAPSHOT).first()
    if row is not None and row.computed_at is not None:
        lead = SCHEDULE_LEAD + timedelta(seconds=row.seconds)
        if db_now() - row.computed_at + lead < max_age():
            return None
    return refresh_stats_snapshot()


def refresh_stats_snapshot_now() -> timedelta | None:
    """Staff's "refresh now": refresh, unless the snapshot is too young (MANUAL_SPACING);
    then return how long until it may be refreshed."""
    row = _computed()
    if row is not None:
        spacing = max(MANUAL_MIN_INTERVAL, MANUAL_SPACING * timedelta(seconds=row.seconds))
        wait = spacing - (db_now() - aware(row.computed_at))
        if wait > timedelta(0):
            return wait
    refresh_stats_snapshot()
    return None


def read_stats_snapshot() -> StatsReading:
    """The figures the stats page shows: the snapshot, never computed per view. Only before
    the very first refresh (right after installing) does a viewer compute them once."""
    row = _computed()
    for _attempt in range(FIRST_READ_ATTEMPTS):
        if row is not None:
            break
        if refresh_stats_snapshot() is None:
            _wait_for_the_other_refresher()  # its figures, once committed, are as fresh
        row = _computed()
    if row is None:
        raise RuntimeError("no stats snapshot could be computed")  # each refresher failed
    computed_at = aware(row.computed_at)
    stale = db_now() - computed_at > max_age()
    return StatsReading(stats_from_json(row.data), computed_at, stale)


def _computed() -> StatsSnapshot | None:
    """The snapshot, unless none was ever computed (its row may hold only a failure)."""
    return StatsSnapshot.objects.filter(name=SNAPSHOT, computed_at__isnull=False).first()


def _wait_for_the_other_refresher() -> None:
    """Block until the refresher holding the lock has committed or given up (a transaction
    of its own, so that what it wrote is read after)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])


def _transaction_start() -> datetime:
    if not is_postgresql():
        return db_now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_timestamp()")
        return aware(cursor.fetchone()[0])


def _record_failure(error: Exception) -> None:
    try:
        with transaction.atomic():
            now = db_now()
            text = f"{type(error).__name__}: {error}"[:2000]
            updated = StatsSnapshot.objects.filter(name=SNAPSHOT).update(
                last_attempt_at=now, last_error=text
            )
            if not updated:
                StatsSnapshot.objects.create(name=SNAPSHOT, last_attempt_at=now, last_error=text)
    except Exception:  # the database itself may be what failed
        logger.exception("could not record the failed stats refresh")


# --- RunStats as JSON ----------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_when(value: str | None) -> datetime | None:
    return None if value is None else aware(value)


def stats_to_json(stats: RunStats) -> dict[str, Any]:
    health = asdict(stats.health)
    # Read live with the heartbeat; stored, it broke the previous release's reading of a
    # snapshot (an unknown field) during a rolling deploy.
    del health["table_problems"]
    health["checked_at"] = _when(stats.health.checked_at)
    health["last_run_at"] = _when(stats.health.last_run_at)
    return {
        "counts": [[status, kind, total] for (status, kind), total in stats.counts.items()],
        "statuses": stats.statuses,
        "kinds": stats.kinds,
        "durations": [asdict(item) for item in stats.durations],
        "failures": [
            {**asdict(item), "top_errors": [list(pair) for pair in item.top_errors]}
            for item in stats.failures
        ],
        "daily": [[day.isoformat(), counts] for day, counts in stats.daily],
        "failed_by_tenderops": [
            [day.isoformat(), counts] for day, counts in stats.failed_by_tenderops
        ],
        "health": health,
        "impossible_starts": stats.impossible_starts,
    }


def stats_from_json(data: dict[str, Any]) -> RunStats:
    health = dict(data["health"])
    health["checked_at"] = _parse_when(health["checked_at"])
    health["last_run_at"] = _parse_when(health["last_run_at"])
    health.pop("table_problems", None)  # read live (with_live_heartbeat), never stored
    return RunStats(
        counts={(status, kind): total for status, kind, total in data["counts"]},
        statuses=list(data["statuses"]),
        kinds=list(data["kinds"]),
        durations=[KindDurations(**item) for item in data["durations"]],
        failures=[
            WindowFailures(**{**item, "top_errors": [tuple(pair) for pair in item["top_errors"]]})
            for item in data["failures"]
        ],
        daily=[(date.fromisoformat(day), counts) for day, counts in data["daily"]],
        failed_by_tenderops=[
            (date.fromisoformat(day), counts) for day, counts in data["failed_by_tenderops"]
        ],
        health=MonitorHealth(**health),
        impossible_starts=data["impossible_starts"],
    )
