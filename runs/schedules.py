"""The django-q2 schedules tenderops owns, kept in line with the settings after every migrate.

``Schedule.name`` is not unique in django-q2, so schedules are matched by name, updated in
place, and any duplicate (made by hand, or by an older release) is removed. ``next_run`` is set
only when a schedule is created, so a re-sync never delays or repeats a tick.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import Schedule

MONITOR_SCHEDULE = "tenderops: fail stuck runs"
RETENTION_SCHEDULE = "tenderops: prune old runs"


@dataclass(frozen=True)
class WantedSchedule:
    name: str
    func: str
    schedule_type: str
    minutes: int | None
    first_run_delay: timedelta


def wanted_schedules() -> list[WantedSchedule]:
    return [
        WantedSchedule(
            name=MONITOR_SCHEDULE,
            func="runs.tasks.fail_stuck_runs_task",
            schedule_type=Schedule.MINUTES,
            minutes=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES,
            first_run_delay=timedelta(0),
        ),
        WantedSchedule(
            name=RETENTION_SCHEDULE,
            func="runs.tasks.prune_runs_task",
            schedule_type=Schedule.DAILY,
            minutes=None,
            first_run_delay=timedelta(minutes=5),
        ),
    ]


def sync_schedules() -> list[Schedule]:
    """Create or update tenderops' schedules; return them."""
    synced = []
    with transaction.atomic():
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
                for field, value in fields.items():
                    setattr(schedule, field, value)
                schedule.save(update_fields=list(fields))
            else:
                schedule = Schedule.objects.create(
                    name=wanted.name, next_run=timezone.now() + wanted.first_run_delay, **fields
                )
            synced.append(schedule)
    return synced


def sync_after_migrate(**kwargs) -> None:
    # `migrate runs 0001` and the like can run before django-q2's tables exist.
    if Schedule._meta.db_table in connection.introspection.table_names():
        sync_schedules()
