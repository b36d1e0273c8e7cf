from datetime import datetime

from django.core.management.base import CommandParser

from runs import limits
from runs.maintenance import PruneResult, db_now, prune_runs
from runs.management.commands._arguments import (
    BatchedRoutineCommand,
    GivenOnce,
    bounded_int,
    confirm,
    json_text,
    local_time,
    on_a_terminal,
    shell_user,
)
from runs.models import Actor


class Command(BatchedRoutineCommand):
    help = (
        "Delete failed and successful runs older than the retention periods, in short "
        "batches. Never touches pending, running or unknown statuses. Safe to re-run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--failed-days",
            action=GivenOnce,
            type=bounded_int("--failed-days", limits.RETENTION_DAYS),
            metavar="N",
            help="Keep failed runs this many days (default TENDEROPS_RETENTION_FAILED_DAYS).",
        )
        parser.add_argument(
            "--success-days",
            action=GivenOnce,
            type=bounded_int("--success-days", limits.RETENTION_DAYS),
            metavar="N",
            help="Keep successful runs this many days (default TENDEROPS_RETENTION_SUCCESS_DAYS).",
        )
        parser.add_argument(
            "--batch-size",
            action=GivenOnce,
            type=bounded_int("--batch-size", limits.PRUNE_BATCH_SIZE),
            metavar="N",
            help="Most rows per transaction (default TENDEROPS_PRUNE_BATCH_SIZE); batches "
            "start smaller and adapt to the pace, to stay well under a second each.",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")
        mode.add_argument(
            "--yes",
            action="store_true",
            help="Delete without asking on a terminal (without one, as from cron, it never asks).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        arguments = {key: options[key] for key in ("failed_days", "success_days", "batch_size")}
        arguments["username"] = shell_user()  # the audit's "user"
        # One moment for the question and the deletion: what expires while the operator reads
        # the counts is not deleted with them.
        now = db_now()
        if not options["dry_run"] and not options["yes"] and on_a_terminal():
            self._confirm(arguments, now, as_json=options["json"])
        result = prune_runs(
            actor=Actor.CLI,
            dry_run=options["dry_run"],
            on_batch=None if options["json"] else self._progress,
            now=now,
            **arguments,
        )
        if options["json"]:
            self.stdout.write(json_text(result.as_dict(), self.stdout))
            return
        for status, cutoff in result.cutoffs.items():
            self.stdout.write(f"{status}: started before {local_time(cutoff)}")
        self.stdout.write(self.style.SUCCESS(result.message))

    def _confirm(self, arguments: dict, now: datetime, as_json: bool) -> None:
        """On a terminal, the deletion waits for a yes to the counts it is about to delete."""
        preview = prune_runs(actor=Actor.CLI, dry_run=True, now=now, **arguments)
        if not preview.total:
            return  # nothing to delete: nothing to ask
        prompt_to = self.stderr if as_json else self.stdout
        for status, cutoff in preview.cutoffs.items():
            count = preview.deleted.get(status, 0)
            prompt_to.write(f"{status}: {count} started before {local_time(cutoff)}")
        these = "this run" if preview.total == 1 else f"these {preview.total} runs"
        confirm(prompt_to, f"Delete {these} for good?")

    def _progress(self, result: PruneResult) -> None:
        if self.verbosity >= 2:
            self.stderr.write(f"batch {result.batches}: {result.total} deleted so far")
