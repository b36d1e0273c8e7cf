"""What the routines accept and how they judge: the stuck and retention policies.

The bounds themselves live in ``runs.limits`` (settings check the environment with them too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, Expression, F, Q, Value, When
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from runs import limits
from runs.limits import MAX_KIND_LENGTH, InvalidParameter
from runs.vocabulary import WHITESPACE, FailReason, RunStatus, StuckRule

__all__ = [
    "InvalidParameter",
    "RetentionPolicy",
    "StuckPolicy",
    "check_kinds",
    "check_timeout_minutes",
]


@dataclass(frozen=True)
class StuckPolicy:
    """When an active run counts as stuck (docs/operations.md, "Signs of life").

    ``silence`` (the default rule): a running run is stuck when its last sign of life (the
    later of ``started_at`` and the last change tenderops observed in its status, progress or
    message) is older than its kind's timeout, and it has not changed since that observation;
    or when it has run longer than ``max_run_minutes`` whatever it writes (since a worker
    picked it up, as observed: the queue does not count). ``age``: the
    runbook's rule, ``started_at`` older than the timeout. Under either rule, with
    ``fail_pending_after_minutes``, a pending run silent that long is stuck too.
    """

    default_minutes: int
    per_kind_minutes: Mapping[str, int] = field(default_factory=dict)
    rule: str = StuckRule.SILENCE
    max_run_minutes: int = 240
    fail_pending_after_minutes: int | None = None

    @classmethod
    def configured(cls, timeout_minutes: int | None = None) -> StuckPolicy:
        """The settings' policy; an explicit ``timeout_minutes`` applies to every kind."""
        rule_settings = {
            "rule": settings.TENDEROPS_STUCK_RULE,
            "max_run_minutes": settings.TENDEROPS_MAX_RUN_MINUTES,
            "fail_pending_after_minutes": settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES,
        }
        if timeout_minutes is not None:
            return cls(default_minutes=check_timeout_minutes(timeout_minutes), **rule_settings)
        return cls(
            default_minutes=settings.TENDEROPS_STUCK_TIMEOUT_MINUTES,
            per_kind_minutes=dict(settings.TENDEROPS_STUCK_TIMEOUTS),
            **rule_settings,
        )

    def minutes_for(self, kind: str) -> int:
        return self.per_kind_minutes.get(kind, self.default_minutes)

    def timed_out(self, moment: str = "started_at") -> Q:
        """Rows of annotated ``run_kind`` whose ``moment`` is past their kind's timeout."""
        overridden = list(self.per_kind_minutes)
        condition = Q(**{f"{moment}__lt": ago(self.default_minutes)})
        if overridden:
            condition &= ~Q(run_kind__in=overridden)
        for kind, minutes in self.per_kind_minutes.items():
            condition |= Q(run_kind=kind, **{f"{moment}__lt": ago(minutes)})
        return condition

    def earliest_minutes(self) -> int:
        """No run started less than this long ago can be stuck, whatever it wrote: its last
        sign of life is never earlier than its start."""
        minutes = [self.default_minutes, *self.per_kind_minutes.values()]
        if self.rule != StuckRule.AGE:
            minutes.append(self.max_run_minutes)
        if self.fail_pending_after_minutes is not None:
            minutes.append(self.fail_pending_after_minutes)
        return min(minutes)

    def stuck_condition(self) -> Q:
        """For ``TenderRun.objects.stuck``: on runs annotated by ``with_liveness``.

        It starts with what it implies, ``started_at`` older than ``earliest_minutes``: a
        range on the index of running runs, so that the runs started lately (most of the
        live ones) are not even read, nor their observations looked up.
        """
        return Q(started_at__lt=ago(self.earliest_minutes())) & self._stuck_condition()

    def _stuck_condition(self) -> Q:
        running = Q(status=RunStatus.RUNNING)
        if self.rule == StuckRule.AGE:
            condition = running & self.timed_out()
        else:
            # The start bounds the index range (no run runs longer than it exists); the time
            # spent waiting in the queue does not count.
            condition = (running & self._silent()) | self.over_max_runtime()
        # Under either rule: an operator who asks for waiting runs to be failed means it.
        if self.fail_pending_after_minutes is not None:
            waited = Q(last_sign_of_life__lt=ago(self.fail_pending_after_minutes))
            condition |= Q(status=RunStatus.PENDING) & self._unchanged() & waited
        return condition

    def over_max_runtime(self) -> Q:
        """Running, picked up longer ago than the maximum runtime: the start bounds the index
        range (no run runs longer than it exists); the time spent waiting in the queue does
        not count."""
        longest = ago(self.max_run_minutes)
        return Q(status=RunStatus.RUNNING, started_at__lt=longest, running_from__lt=longest)

    @staticmethod
    def _unchanged() -> Q:
        return Q(observed_fingerprint__isnull=True) | Q(observed_fingerprint=F("fingerprint_now"))

    def _silent(self) -> Q:
        return self._unchanged() & self.timed_out("last_sign_of_life")

    def reason(self) -> Expression:
        """Which part of the rule a stuck run meets (a ``FailReason``)."""
        text = models.CharField()
        waiting = When(status=RunStatus.PENDING, then=Value(FailReason.WAITING))
        if self.rule == StuckRule.AGE:
            return Case(waiting, default=Value(FailReason.AGE), output_field=text)
        # Silent first: a run dead for days is silent, and over the maximum runtime too; the
        # maximum runtime is what fails a run that still writes.
        return Case(
            waiting,
            When(self._silent(), then=Value(FailReason.SILENT)),
            default=Value(FailReason.MAX_RUNTIME),
            output_field=text,
        )

    def stuck_from(
        self,
        kind: str,
        status: str,
        started_at: datetime,
        last_sign_of_life: datetime,
        running_from: datetime | None,
    ) -> datetime | None:
        """When a run becomes stuck if nothing changes meanwhile (the rule above, for one
        run, for the detail page); None if it never does so (a pending run not failable).
        ``running_from`` as ``with_liveness`` annotates it; None: picked up only lately,
        not before its last sign of life."""
        if status == RunStatus.PENDING:
            if self.fail_pending_after_minutes is None:
                return None
            return last_sign_of_life + timedelta(minutes=self.fail_pending_after_minutes)
        if status != RunStatus.RUNNING:
            return None
        timeout = timedelta(minutes=self.minutes_for(kind))
        if self.rule == StuckRule.AGE:
            return started_at + timeout
        picked_up = last_sign_of_life if running_from is None else running_from
        longest = picked_up + timedelta(minutes=self.max_run_minutes)
        return min(last_sign_of_life + timeout, longest)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": str(self.rule),
            "default_minutes": self.default_minutes,
            "per_kind_minutes": dict(self.per_kind_minutes),
            "max_run_minutes": self.max_run_minutes,
            "fail_pending_after_minutes": self.fail_pending_after_minutes,
        }


def ago(minutes: int) -> Expression:
    """The database's clock, ``minutes`` ago."""
    return Now() - timedelta(minutes=minutes)


def check_timeout_minutes(value: Any) -> int:
    return limits.TIMEOUT_MINUTES.check(value, "timeout_minutes")


def check_kinds(kinds: Iterable[str]) -> list[str]:
    """The kinds asked for, trimmed as the database trims a run's kind (ASCII whitespace only:
    a kind ending in an ideographic space is matched with it)."""
    checked = []
    for kind in kinds:
        trimmed = kind.strip(WHITESPACE) if isinstance(kind, str) else ""
        if not trimmed or len(kind) > MAX_KIND_LENGTH:
            raise InvalidParameter(
                _("A kind must be non-empty text of at most %(maximum)d characters.")
                % {"maximum": MAX_KIND_LENGTH}
            )
        checked.append(trimmed)
    return checked


@dataclass(frozen=True)
class RetentionPolicy:
    failed_days: int
    success_days: int
    batch_size: int

    @classmethod
    def configured(
        cls,
        failed_days: int | None = None,
        success_days: int | None = None,
        batch_size: int | None = None,
    ) -> RetentionPolicy:
        def pick(value: int | None, default: int, name: str, limit: limits.Limit) -> int:
            return limit.check(default if value is None else value, name)

        return cls(
            failed_days=pick(
                failed_days,
                settings.TENDEROPS_RETENTION_FAILED_DAYS,
                "failed_days",
                limits.RETENTION_DAYS,
            ),
            success_days=pick(
                success_days,
                settings.TENDEROPS_RETENTION_SUCCESS_DAYS,
                "success_days",
                limits.RETENTION_DAYS,
            ),
            batch_size=pick(
                batch_size,
                settings.TENDEROPS_PRUNE_BATCH_SIZE,
                "batch_size",
                limits.PRUNE_BATCH_SIZE,
            ),
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Only these two statuses are ever deleted; the cutoffs are fixed for a whole prune."""
        return {
            RunStatus.FAILED: now - timedelta(days=self.failed_days),
            RunStatus.SUCCESS: now - timedelta(days=self.success_days),
        }
