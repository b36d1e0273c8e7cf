import secrets
import time

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import IntegrityError, transaction

from runs import limits
from runs.demo_data import SeedPlan, seed_runs
from runs.management.commands._arguments import EXIT_BAD_USAGE, RoutineCommand, bounded_int
from runs.models import TenderRun


class Command(RoutineCommand):
    help = (
        "Fill tender_projects and tender_runs with realistic demo runs: ~95% finished over "
        "--days days, some stuck, live running and pending, NULL kind on a third. Refuses a "
        "table that already has runs unless --append (never point it at the live database)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        def group(flag: str):
            return bounded_int(flag, limits.SEED_GROUP)

        parser.add_argument(
            "--runs",
            type=bounded_int("--runs", limits.SEED_ROWS),
            default=2000,
            help="Total runs (default 2000).",
        )
        parser.add_argument("--stuck", type=group("--stuck"), default=12, help="Stuck runs (12).")
        parser.add_argument(
            "--live-running",
            type=group("--live-running"),
            default=4,
            help="Running runs still within their timeout (4).",
        )
        parser.add_argument(
            "--pending",
            type=group("--pending"),
            default=3,
            dest="queued",
            metavar="PENDING",
            help="Pending runs (3).",
        )
        parser.add_argument("--days", type=bounded_int("--days", limits.SEED_DAYS), default=400)
        parser.add_argument(
            "--projects",
            type=bounded_int("--projects", limits.SEED_ROWS),
            help="Projects (default: one per 200 runs, at least 5).",
        )
        parser.add_argument(
            "--random-seed",
            type=bounded_int("--random-seed", limits.SEED_ROWS),
            help="Makes ids and data repeatable (default 1; with --append, a fresh one).",
        )
        parser.add_argument("--append", action="store_true", help="Allow a non-empty table.")

    def handle(self, *args, **options) -> None:
        appending = options["append"]
        if appending and not settings.DEBUG:
            # A table with rows may be the live one: fake stuck runs there would be failed,
            # alerted and counted as the backend's.
            raise CommandError(
                "--append adds demo runs to a table that has rows; it runs only with "
                "DJANGO_DEBUG=true (never on the live database). Nothing was changed.",
                returncode=EXIT_BAD_USAGE,
            )
        if not appending and TenderRun.objects.exists():
            raise CommandError("tender_runs already has rows; pass --append to add more anyway.")
        special = options["stuck"] + options["live_running"] + options["queued"]
        if special > options["runs"]:
            raise CommandError(
                f"--runs {options['runs']} is fewer than the {special} stuck, live running and "
                "pending runs asked for.",
                returncode=EXIT_BAD_USAGE,
            )
        plan = SeedPlan(
            runs=options["runs"],
            stuck=options["stuck"],
            live_running=options["live_running"],
            pending=options["queued"],
            days=options["days"],
            projects=options["projects"] or max(5, options["runs"] // 200),
            seed=options["random_seed"] or (secrets.randbelow(10**9) + 2 if appending else 1),
        )
        began = time.perf_counter()
        try:
            with transaction.atomic():
                made = seed_runs(plan)
        except IntegrityError:
            raise CommandError(
                f"Runs seeded with --random-seed {plan.seed} are already in the table; "
                "pass another --random-seed. Nothing was added."
            ) from None
        elapsed = time.perf_counter() - began
        summary = ", ".join(f"{count} {name}" for name, count in made.items())
        self.stdout.write(self.style.SUCCESS(f"Seeded {summary} in {elapsed:.1f} s."))
