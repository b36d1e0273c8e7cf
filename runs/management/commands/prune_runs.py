from django.core.management.base import CommandParser

from runs import limits
from runs.maintenance import PruneResult, prune_runs
from runs.management.commands._arguments import (
    BatchedRoutineCommand,
    GivenOnce,
    bounded_int,
    json_text,
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
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        result = prune_runs(
            actor=Actor.CLI,
            failed_days=options["failed_days"],
            success_days=options["success_days"],
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
            on_batch=None if options["json"] else self._progress,
        )
        if options["json"]:
            self.stdout.write(json_text(result.as_dict(), self.stdout))
            return
        for status, cutoff in result.cutoffs.items():
            self.stdout.write(f"{status}: started before {cutoff:%Y-%m-%d %H:%M:%S} UTC")
        self.stdout.write(self.style.SUCCESS(result.message))

    def _progress(self, result: PruneResult) -> None:
        if self.verbosity >= 2:
            self.stderr.write(f"batch {result.batches}: {result.total} deleted so far")
