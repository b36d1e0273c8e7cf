from dataclasses import replace

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from runs import limits
from runs.maintenance import (
    CleanupResult,
    StuckRun,
    db_now,
    fail_stuck_runs,
)
from runs.maintenance.selection import clean_up_promised, gone_of_the_rest, promise_of_listed
from runs.management.commands._arguments import (
    BatchedRoutineCommand,
    GivenOnce,
    bounded_int,
    confirm,
    json_text,
    kind,
    on_a_terminal,
    shell_user,
)
from runs.models import Actor
from runs.shown_text import shortened

EXIT_NEEDS_DECISION = 2


class Command(BatchedRoutineCommand):
    help = (
        "List the stuck runs (silent past their timeout, or over the maximum runtime; see "
        "TENDEROPS_STUCK_RULE) and mark them failed "
        "(audited, guarded against runs that finish meanwhile)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            action=GivenOnce,
            type=bounded_int("--timeout", limits.TIMEOUT_MINUTES),
            metavar="MINUTES",
            help="Timeout for every kind (default: TENDEROPS_STUCK_TIMEOUT_MINUTES and "
            "the per-kind TENDEROPS_STUCK_TIMEOUTS). Runs over TENDEROPS_MAX_RUN_MINUTES "
            "are stuck whatever it says.",
        )
        parser.add_argument(
            "--kind",
            action="append",
            type=kind,
            default=[],
            dest="kinds",
            metavar="KIND",
            help="Only runs of this kind (kind, else run_type); repeat for several.",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="List only; change nothing.")
        mode.add_argument("--auto-fix", action="store_true", help="Fail them without asking.")
        parser.add_argument("--json", action="store_true", help="Print the API's JSON object.")

    def handle(self, *args, **options) -> None:
        interactive = not options["dry_run"] and not options["auto_fix"]
        if interactive and not on_a_terminal():
            raise CommandError(
                "No terminal to confirm on: pass --dry-run to list the stuck runs or "
                "--auto-fix to fail them without asking. Nothing was changed.",
                returncode=EXIT_NEEDS_DECISION,
            )
        selection = {
            "timeout_minutes": options["timeout"],
            "kinds": options["kinds"],
            "username": shell_user(),  # the audit's "user"
        }
        if interactive:
            result = self._confirm_and_fail(selection, as_json=options["json"])
        else:
            result = fail_stuck_runs(actor=Actor.CLI, dry_run=options["dry_run"], **selection)
        self._report(result, as_json=options["json"], show_table=not interactive)

    def _confirm_and_fail(self, selection: dict, as_json: bool) -> CleanupResult:
        listed_at = db_now()  # a run failed from here on, while the operator reads, is spent
        preview = fail_stuck_runs(actor=Actor.CLI, dry_run=True, **selection)
        if not preview.stuck_runs:
            return replace(preview, dry_run=False)  # no question asked: nothing to fail
        prompt_to = self.stderr if as_json else self.stdout
        if not as_json:
            self._print_table(preview.stuck_runs)
        if preview.truncated:
            prompt_to.write(
                f"{preview.total} runs are stuck; only the {len(preview.stuck_runs)} listed "
                "are failed from this prompt (--auto-fix fails them all)."
            )
        count = len(preview.stuck_runs)
        these = "this run" if count == 1 else f"these {count} runs"
        confirm(prompt_to, f"Mark {these} failed?")
        # Only the runs shown, in the life shown, and only those still stuck now: the
        # statement re-checks all three.
        run_ids = [run.id for run in preview.stuck_runs]
        promise = promise_of_listed(preview.stuck_runs, listed_at)
        result = clean_up_promised(promise, actor=Actor.CLI, **selection)
        gone = gone_of_the_rest(run_ids, result)
        left = count - result.fixed_count - gone
        if gone or left:  # what the prompt listed and was not failed: never silently
            prompt_to.write(
                self.style.WARNING(
                    f"Of the {count} listed: {left} no longer stuck (finished, active again or "
                    f"failed meanwhile), left as they are; {gone} deleted meanwhile."
                )
            )
        return result

    def _report(self, result: CleanupResult, as_json: bool, show_table: bool) -> None:
        if as_json:
            self.stdout.write(json_text(result.as_dict(), self.stdout))
            return
        if result.stuck_runs and show_table:
            self._print_table(result.stuck_runs)
            if result.truncated:
                self.stdout.write(
                    f"... the first {len(result.stuck_runs)} of {result.total} runs "
                    "(--json gives the same list and the full count)."
                )
        # Red (NOTICE) would read as an error: stuck runs left as they are are a warning.
        if result.fixed_count or not result.total:
            self.stdout.write(self.style.SUCCESS(result.message))
        else:
            self.stdout.write(self.style.WARNING(result.message))

    def _print_table(self, runs: list[StuckRun]) -> None:
        # In TENDEROPS_TIME_ZONE, named, as the admin and the alerts show them.
        started = f"started ({settings.TIME_ZONE})"
        header = ("id", "project", "kind", started, "why", "silent min", "running min")
        # The backend's text as it reads: a kind of escape sequences would retitle or recolour
        # the operator's terminal, a 5,000-character kind would widen every line.
        rows = [
            (
                shortened(run.id, 64, one_line=True) or '""',  # the empty id, as it is
                shortened(run.project_id, 64, one_line=True) or '""',
                shortened(run.kind, 40, one_line=True) or "-",
                f"{timezone.localtime(run.started_at):%Y-%m-%d %H:%M:%S}",
                str(run.reason),
                "" if run.silent_minutes is None else f"{run.silent_minutes:.1f}",
                f"{run.running_minutes:.1f}",
            )
            for run in runs
        ]
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)
        ]
        numbers = len(header) - 2  # minutes, right-aligned
        for line in (header, *rows):
            cells = [
                cell.rjust(width) if column >= numbers else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(line, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())
