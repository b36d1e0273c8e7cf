"""The django-q2 schedules tenderops owns, kept in line with the settings after every migrate.

``Schedule.name`` is not unique in django-q2, so schedules are matched by name, updated in
place, and any duplicate (made by hand, or by an older release) is removed. The monitor's
``next_run`` is set when it is created, and moved only when it lies more than one interval
ahead (the interval was lowered), so a re-sync never delays or repeats a tick.
Retention runs daily at ``TENDEROPS_RETENTION_TIME`` in ``TENDEROPS_TIME_ZONE``, never
minutes after ``migrate``; its ``next_run`` moves only when it is not at that time of day.
``TENDEROPS_RETENTION_TIME=off`` removes it (the demo keeps its seeded runs so). Alerts have
two: the delivery of due retries every minute, and the failure-spike rule every 10 minutes.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import Schedule

from runs.maintenance.heartbeat import note_monitor_scheduled
from runs.maintenance.spikes import SPIKE_CHECK_MINUTES
from runs.models import Heartbeat

MONITOR_SCHEDULE = "tenderops: fail stuck runs"
RETENTION_SCHEDULE = "tenderops: prune old runs"
LATE_FINISH_SCHEDULE = "tenderops: note late finishes"
DELIVERY_SCHEDULE = "tenderops: deliver alerts"
SPIKES_SCHEDULE = "tenderops: check failure spikes"
STATS_SCHEDULE = "tenderops: refresh stats"
OWNED_SCHEDULES = (
    MONITOR_SCHEDULE,
    RETENTION_SCHEDULE,
    LATE_FINISH_SCHEDULE,
    DELIVERY_SCHEDULE,
    SPIKES_SCHEDULE,
    STATS_SCHEDULE,
)
# Late finishes are counted off the monitor's path: a few minutes late is soon enough.
LATE_FINISH_INTERVAL_MINUTES = 5
# Alerts' retries are due after a minute at the earliest.
DELIVERY_MINUTES = 1


@dataclass(frozen=True)
class WantedSchedule:
    name: str
    func: str
    schedule_type: str
    minutes: int | None
    time_of_day: time | None = None  # daily schedules: when, in TENDEROPS_TIME_ZONE

    def first_run(self, now: datetime) -> datetime:
        return now if self.time_of_day is None else next_daily_run(now, self.time_of_day)

    def keeps(self, next_run: datetime | None, now: datetime) -> bool:
        """Whether an existing schedule's ``next_run`` is still right: for an interval, no
        later than one interval away (lowered from a day to a minute, the monitor waited
        until the next day while health called it stale)."""
        if next_run is None:
            return False
        if self.time_of_day is None:
            return next_run <= now + timedelta(minutes=self.minutes or 0)
        local = next_run.astimezone(ZoneInfo(settings.TIME_ZONE))
        return local.time().replace(microsecond=0) == self.time_of_day


def next_daily_run(now: datetime, at: time) -> datetime:
    """The first ``at`` (wall-clock time in TENDEROPS_TIME_ZONE) after ``now``."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local_now = now.astimezone(zone)
    candidate = datetime.combine(local_now.date(), at, tzinfo=zone)
    if candidate <= local_now:
        candidate = datetime.combine(local_now.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate


def wanted_schedules() -> list[WantedSchedule]:
    wanted = [
        WantedSchedule(
            name=MONITOR_SCHEDULE,
            func="runs.tasks.fail_stuck_runs_task",
            schedule_type=Schedule.MINUTES,
            minutes=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES,
        ),
        WantedSchedule(
            name=LATE_FINISH_SCHEDULE,
            func="runs.tasks.note_late_finishes_task",
            schedule_type=Schedule.MINUTES,
            minutes=LATE_FINISH_INTERVAL_MINUTES,
        ),
        WantedSchedule(
            name=DELIVERY_SCHEDULE,
            func="runs.tasks.deliver_due_alerts_task",
            schedule_type=Schedule.MINUTES,
            minutes=DELIVERY_MINUTES,
        ),
        WantedSchedule(
            name=SPIKES_SCHEDULE,
            func="runs.tasks.check_failure_spikes_task",
            schedule_type=Schedule.MINUTES,
            minutes=SPIKE_CHECK_MINUTES,
        ),
        # Every minute, refreshing only when due (runs.maintenance.stats_snapshot).
        WantedSchedule(
            name=STATS_SCHEDULE,
            func="runs.tasks.refresh_stats_task",
            schedule_type=Schedule.MINUTES,
            minutes=1,
        ),
    ]
    if settings.TENDEROPS_RETENTION_TIME is not None:
        wanted.append(
            WantedSchedule(
                name=RETENTION_SCHEDULE,
                func="runs.tasks.prune_runs_task",
                schedule_type=Schedule.DAILY,
                minutes=None,
                time_of_day=settings.TENDEROPS_RETENTION_TIME,
            )
        )
    return wanted


def sync_schedules() -> list[Schedule]:
    """Create or update tenderops' schedules; return them."""
    synced = []
    wanted_names = [wanted.name for wanted in wanted_schedules()]
    with transaction.atomic():
        Schedule.objects.filter(name__in=OWNED_SCHEDULES).exclude(name__in=wanted_names).delete()
        for wanted in wanted_schedules():
            existing = list(
                Schedule.objects.select_for_update().filter(name=wanted.name).order_by("pk")
            )
            for duplicate in existing[1:]:
                duplicate.delete()
            fields = {
                "func": wanted.func,
                "schedule_type": wanted.schedule_type,
                "minutes": wanted.minutes,
                "repeats": -1,
            }
            if existing:
                schedule = existing[0]
                now = timezone.now()
                if not wanted.keeps(schedule.next_run, now):
                    fields["next_run"] = wanted.first_run(now)
                for field, value in fields.items():
                    setattr(schedule, field, value)
                schedule.save(update_fields=list(fields))
            else:
                schedule = Schedule.objects.create(
                    name=wanted.name, next_run=wanted.first_run(timezone.now()), **fields
                )
                if wanted.name == MONITOR_SCHEDULE:
                    note_monitor_scheduled()
            synced.append(schedule)
    return synced


def sync_after_migrate(**kwargs) -> None:
    # `migrate runs 0001`, `migrate django_q` and the like can run before django-q2's tables
    # or tenderops' heartbeats (where the monitor's first scheduling is noted) exist.
    tables = connection.introspection.table_names()
    if Schedule._meta.db_table not in tables:
        return
    if Heartbeat._meta.db_table in tables:
        sync_schedules()
    else:  # `migrate runs zero` took tenderops' tables: its tasks would fail every minute
        Schedule.objects.filter(name__in=OWNED_SCHEDULES).delete()
