"""What the failing routines return: the runs they failed (or found), and the counts.

The API's JSON and the command line's ``--json`` are ``CleanupResult.as_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from runs.maintenance.policy import StuckPolicy
from runs.shown_text import shortened
from runs.vocabulary import FailReason


@dataclass(frozen=True)
class StuckRun:
    id: str
    project_id: str
    kind: str
    started_at: datetime
    running_minutes: float | None  # None for a run started at +/-infinity (marked by hand)
    reason: str = FailReason.AGE
    silent_minutes: float | None = None  # since its last sign of life

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "running_minutes": self.running_minutes,
            "silent_minutes": self.silent_minutes,
            "reason": str(self.reason),
        }


@dataclass(frozen=True)
class CleanupResult:
    stuck_runs: list[StuckRun]  # at most failing.LIST_LIMIT, in (started_at, id) order
    fixed_count: int
    dry_run: bool
    policy: StuckPolicy
    action_ids: tuple[int, ...] = ()  # the audit's actions (one a batch), if any failed
    found_count: int | None = None  # all stuck runs found (dry run) or failed; None: listed
    complete: bool = True  # False: the deadline stopped the cleanup with runs left stuck
    batches: int = 0
    longest_batch_seconds: float = 0.0  # the longest batch's transaction, commit included
    answers: dict[str, bool] = field(default_factory=dict)  # the caller's questions, if asked
    kinds_not_running: list[str] = field(default_factory=list)  # of the kinds asked for
    counts_by_kind: dict[str, int] = field(default_factory=dict)  # every run failed, by kind

    @property
    def action_id(self) -> int | None:
        """The audit's action of the first batch, which lists the runs of them all."""
        return self.action_ids[0] if self.action_ids else None

    @property
    def total(self) -> int:
        """How many runs the result is about (failed, or found by a dry run), all of them."""
        if self.found_count is not None:
            return self.found_count
        return len(self.stuck_runs) if self.dry_run else self.fixed_count

    @property
    def truncated(self) -> bool:
        return self.total > len(self.stuck_runs)

    @property
    def message(self) -> str:
        text = self._outcome()
        if self.kinds_not_running:
            kinds = ", ".join(
                f"“{shortened(kind, 60, one_line=True)}”" for kind in self.kinds_not_running
            )
            missing = ngettext(
                "No run of kind %(kinds)s is running: is the kind spelt right?",
                "No run of the kinds %(kinds)s is running: are they spelt right?",
                len(self.kinds_not_running),
            )
            text += " " + missing % {"kinds": kinds}
        return text

    def _outcome(self) -> str:
        if self.total == 0:  # whether or not a dry run was asked for (the CLI's preview is one)
            return _("No stuck runs found; nothing changed.")
        if self.dry_run:
            return ngettext(
                "Dry run: %(count)d stuck run found, nothing changed.",
                "Dry run: %(count)d stuck runs found, nothing changed.",
                self.total,
            ) % {"count": self.total}
        text = ngettext(
            "Fixed %(count)d stuck run.", "Fixed %(count)d stuck runs.", self.fixed_count
        ) % {"count": self.fixed_count}
        if not self.complete:
            text += " " + _("Stopped at the time limit; run it again to fail the rest.")
        return text

    def as_dict(self) -> dict[str, Any]:
        """The JSON object that the API returns and ``cleanup_stuck_runs --json`` prints:
        ``stuck_runs`` lists at most ``failing.LIST_LIMIT`` runs (``truncated`` true when there were
        more), ``fixed_count`` counts them all."""
        return {
            "fixed_count": self.fixed_count,
            "stuck_count": self.total,
            "stuck_runs": [run.as_dict() for run in self.stuck_runs],
            "truncated": self.truncated,
            "complete": self.complete,
            "message": self.message,
            "dry_run": self.dry_run,
            "kinds_not_running": self.kinds_not_running,
        }


@dataclass(frozen=True)
class MarkFailedResult:
    failed: list[StuckRun]
    skipped_count: int
    gone_count: int = 0  # promised runs no longer in the table (the backend deleted them)
    skipped_more: bool = False  # more were skipped than skipped_count (counted to a bound)
