from django.core.management.base import CommandParser
from django.utils import timezone
from django_q.models import Schedule

from runs.management.commands._arguments import RoutineCommand, local_time
from runs.schedules import sync_schedules, wanted_schedules


class Command(RoutineCommand):
    help = "Show tenderops' django-q2 schedules; with --sync, make them match the settings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="Create or update them first.")

    def handle(self, *args, **options) -> None:
        if options["sync"]:
            sync_schedules()
            self.stdout.write(self.style.SUCCESS("Schedules synced with the settings."))
        now = timezone.now()
        for wanted in wanted_schedules():
            name = wanted.name
            schedules = Schedule.objects.filter(name=name)
            if not schedules:
                self.stdout.write(f"{name}: missing (run migrate or --sync)")
            for schedule in schedules:
                every = (
                    f"every {schedule.minutes} min"
                    if schedule.schedule_type == Schedule.MINUTES
                    else schedule.get_schedule_type_display().lower()
                )
                # Moved by hand (run early from django-q2's admin: a daily run then keeps
                # that new time) or by a change of the settings that nothing synced yet.
                drifted = (
                    ""
                    if wanted.keeps(schedule.next_run, now)
                    else " (not as the settings say: --sync puts it back)"
                )
                self.stdout.write(
                    f"{name}: {schedule.func}, {every}, "
                    f"next run {local_time(schedule.next_run)}{drifted}"
                )
