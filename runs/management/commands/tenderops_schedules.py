from django.core.management.base import CommandParser
from django_q.models import Schedule

from runs.management.commands._arguments import RoutineCommand
from runs.schedules import sync_schedules, wanted_schedules


class Command(RoutineCommand):
    help = "Show tenderops' django-q2 schedules; with --sync, make them match the settings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="Create or update them first.")

    def handle(self, *args, **options) -> None:
        if options["sync"]:
            sync_schedules()
            self.stdout.write(self.style.SUCCESS("Schedules synced with the settings."))
        names = [wanted.name for wanted in wanted_schedules()]
        for name in names:
            schedules = Schedule.objects.filter(name=name)
            if not schedules:
                self.stdout.write(f"{name}: missing (run migrate or --sync)")
            for schedule in schedules:
                every = (
                    f"every {schedule.minutes} min"
                    if schedule.schedule_type == Schedule.MINUTES
                    else schedule.get_schedule_type_display().lower()
                )
                self.stdout.write(
                    f"{name}: {schedule.func}, {every}, "
                    f"next run {schedule.next_run:%Y-%m-%d %H:%M:%S %Z}"
                )
