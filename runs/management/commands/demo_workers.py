import random
import time

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import OperationalError

from runs import limits
from runs.demo_workers import work_once
from runs.management.commands._arguments import EXIT_BAD_USAGE, RoutineCommand, bounded_int


class Command(RoutineCommand):
    help = (
        "The demo's stand-in workers: every --interval seconds, the demo's seeded live runs "
        "write progress and finish, and pending ones are picked up; one worker has died, so "
        "its run goes silent. Writes only the demo's own runs, and only with DJANGO_DEBUG=true."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        interval = bounded_int("--interval", limits.DEMO_INTERVAL_SECONDS)
        rounds = bounded_int("--rounds", limits.DEMO_ROUNDS)
        parser.add_argument("--interval", type=interval, default=20, help="Seconds (20).")
        parser.add_argument("--rounds", type=rounds, help="Stop after so many (default: never).")

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "demo_workers writes progress into tender_runs, as a demo's workers would; it "
                "runs only with DJANGO_DEBUG=true (as `make demo` sets it). Nothing was changed.",
                returncode=EXIT_BAD_USAGE,
            )
        rng = random.Random()
        rounds = options["rounds"]
        done = 0
        try:
            while rounds is None or done < rounds:
                if done:
                    time.sleep(options["interval"])  # a worker's pace, not a synchronisation
                self._round(rng, first=not done)
                done += 1
        except KeyboardInterrupt:  # Ctrl-C on the demo reaches its whole process group
            return

    def _round(self, rng: random.Random, first: bool) -> None:
        try:
            work = work_once(rng)
        except OperationalError as error:  # SQLite busy with the cluster: next round
            self.stderr.write(f"Demo workers: skipped a round ({str(error)[:200]}).")
            return
        # Said when something happens, not every round: the server's log shares the terminal.
        if first or work.finished or work.picked_up:
            # Only while the dead worker's run is there to be failed: a demo started again
            # later finds it failed already.
            dead = " (one worker has died: its run stays silent)" if work.silent else ""
            self.stdout.write(
                f"Demo workers: {work.progressed} live runs wrote progress{dead}, "
                f"{work.finished} finished, {work.picked_up} pending picked up."
            )
            self.stdout.flush()  # into the demo's terminal now, even through a pipe
