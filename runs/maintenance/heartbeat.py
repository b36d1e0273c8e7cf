"""Heartbeats of the scheduled routines, and the monitor's health read from them."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from runs.adoption import shape_problems
from runs.maintenance.db import db_now, now_sql
from runs.maintenance.liveness import oldest_silence_seconds, silent_runs, waiting_runs
from runs.maintenance.policy import StuckPolicy
from runs.models import Heartbeat, TenderRun

MONITOR = "monitor"
RETENTION = "retention"
# Not a routine's tick: when the monitor's schedule was first made (a fresh install).
MONITOR_SCHEDULED = "monitor scheduled"
STALE_AFTER_INTERVALS = 3
# A fresh install is "starting" for this many intervals: the first is when its schedule is
# due, the second covers the scheduler's 30 s wake-up and the tick itself.
STARTING_INTERVALS = 2


def beat(name: str, result: dict[str, Any]) -> None:
    """Upsert the heartbeat in one statement, stamped by the database's clock."""
    now, now_params = now_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            heartbeat_upsert(f"VALUES (%s, {now}, %s)"),
            [name, *now_params, json.dumps(result)],
        )


@dataclass(frozen=True)
class MonitorHealth:
    checked_at: datetime
    last_run_at: datetime | None
    last_result: dict[str, Any]
    interval_minutes: int
    running_count: int
    stuck_count: int
    silent_count: int
    waiting_count: int
    oldest_silence_seconds: float | None
    # A fresh install whose monitor has not ticked yet (monitor_starting_at): not stale yet.
    starting: bool = False
    # What is wrong with tender_runs' shape (runs.adoption): a monitor that ticks on may
    # still judge nothing right (runs looked younger than they were: none was ever stuck).
    table_problems: tuple[str, ...] = ()

    @property
    def stale_after(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes * STALE_AFTER_INTERVALS)

    @property
    def healthy(self) -> bool:
        return (
            self.last_run_at is not None and self.checked_at - self.last_run_at <= self.stale_after
        )

    @property
    def stale(self) -> bool:
        return not self.healthy and not self.starting

    @property
    def status(self) -> str:
        if self.stale:  # said first: its steps come first (the table's are in the body)
            return "stale"
        if self.table_problems:
            return "table_unsupported"
        return "ok" if self.healthy else "starting"

    @property
    def failing_check(self) -> bool:
        """Whether an uptime check should page: a stale monitor, or a table it misjudges."""
        return self.stale or bool(self.table_problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "monitor_last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "monitor_last_result": self.last_result,
            "monitor_interval_minutes": self.interval_minutes,
            "stale_after_seconds": int(self.stale_after.total_seconds()),
            "running_count": self.running_count,
            "stuck_count": self.stuck_count,
            "silent_count": self.silent_count,
            "waiting_count": self.waiting_count,
            "oldest_active_silence_seconds": self.oldest_silence_seconds,
            "monitor_mode": settings.TENDEROPS_MONITOR_MODE,
            "table_problems": list(self.table_problems),
            "checked_at": self.checked_at.isoformat(),
        }


def monitor_health() -> MonitorHealth:
    beat = Heartbeat.objects.filter(name=MONITOR).first()
    return MonitorHealth(
        **_last_beat(beat),
        interval_minutes=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES,
        **running_and_stuck(),
        silent_count=silent_runs().count(),
        waiting_count=waiting_runs().count(),
        oldest_silence_seconds=oldest_silence_seconds(),
        table_problems=tuple(shape_problems(connection)),
    )


def running_and_stuck() -> dict[str, int]:
    """The running runs and the stuck ones now, each counted by index."""
    return {
        "running_count": TenderRun.objects.running().count(),
        "stuck_count": TenderRun.objects.stuck(StuckPolicy.configured()).count(),
    }


def with_live_heartbeat(health: MonitorHealth) -> MonitorHealth:
    """``health`` as a stats snapshot kept it, with the monitor's heartbeat read now (one
    row): a snapshot may be minutes old, and a monitor that stopped since must not be shown
    as healthy, nor its last run as "0 s ago"; nor a table altered since as fine."""
    return replace(
        health,
        **_last_beat(Heartbeat.objects.filter(name=MONITOR).first()),
        table_problems=tuple(shape_problems(connection)),
    )


def _last_beat(beat: Heartbeat | None) -> dict[str, Any]:
    checked_at = db_now()
    return {
        "checked_at": checked_at,
        "last_run_at": beat.last_finished_at if beat else None,
        "last_result": beat.last_result if beat else {},
        "starting": beat is None and monitor_starting_at(checked_at),
    }


def monitor_starting_at(moment: datetime) -> bool:
    """Whether a monitor that never ticked is starting, not stale (a fresh install's health
    check must not page anyone): its schedule was first made less than
    ``STARTING_INTERVALS`` intervals before ``moment``, and no tick of it has finished, even
    failed. A fixed start, not the schedule's ``next_run``, which the scheduler moves on each
    time it fires: a cluster whose ticks never finish would stay "starting" for ever."""
    # Imported here: django-q2 and the schedules (which note the scheduling through this
    # module) sit above the routines.
    from django_q.models import Task

    from runs.schedules import MONITOR_SCHEDULE

    scheduled = Heartbeat.objects.filter(name=MONITOR_SCHEDULED).first()
    if scheduled is None:
        return False
    window = timedelta(minutes=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES * STARTING_INTERVALS)
    if moment >= scheduled.last_finished_at + window:
        return False
    return not Task.objects.filter(group=MONITOR_SCHEDULE).exists()


def note_monitor_scheduled() -> None:
    """Record when the monitor's schedule was first made (``monitor_starting_at``); kept as
    it is when the schedule is made again."""
    Heartbeat.objects.get_or_create(
        name=MONITOR_SCHEDULED, defaults={"last_finished_at": db_now(), "last_result": {}}
    )


def heartbeat_cte(name: str | None, now: str) -> str:
    """The upsert of heartbeat ``name`` (a parameter), as one more part of the failing
    statement: the monitor's whole tick is then a single statement."""
    if name is None:
        return ""
    upsert = heartbeat_upsert(
        f"SELECT %s, {now}, jsonb_build_object('fixed_count', count(*)) FROM failed"
    )
    return f",\n        beat AS ({upsert})"


def beat_when_none_stuck(name: str) -> tuple[str, list]:
    """The upsert of heartbeat ``name`` as the observation's ``when_none`` (it reads the CTE
    ``stuck``): the same stamp and result as a failing batch that failed nothing."""
    now, now_params = now_sql()
    upsert = heartbeat_upsert(
        f"SELECT %s, {now}, jsonb_build_object('fixed_count', 0) FROM stuck WHERE NOT stuck.found"
    )
    return upsert, [name, *now_params]


def heartbeat_upsert(row_sql: str) -> str:
    """Insert or update the heartbeat whose (name, finished at, result) ``row_sql`` yields."""
    return (
        f"INSERT INTO {Heartbeat._meta.db_table} (name, last_finished_at, last_result) "
        f"{row_sql} ON CONFLICT (name) DO UPDATE SET "
        "last_finished_at = excluded.last_finished_at, last_result = excluded.last_result"
    )
