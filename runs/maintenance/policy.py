"""What the routines accept and how they judge: the stuck and retention policies.

The bounds themselves live in ``runs.limits`` (settings check the environment with them too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from runs import limits
from runs.limits import MAX_KIND_LENGTH, InvalidParameter
from runs.vocabulary import RunStatus

__all__ = [
    "InvalidParameter",
    "RetentionPolicy",
    "StuckPolicy",
    "check_kinds",
    "check_timeout_minutes",
]


@dataclass(frozen=True)
class StuckPolicy:
    """How long a run of each kind may stay ``running`` before it counts as stuck."""

    default_minutes: int
    per_kind_minutes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def configured(cls, timeout_minutes: int | None = None) -> StuckPolicy:
        """The settings' policy; an explicit ``timeout_minutes`` applies to every kind."""
        if timeout_minutes is not None:
            return cls(default_minutes=check_timeout_minutes(timeout_minutes))
        return cls(
            default_minutes=settings.TENDEROPS_STUCK_TIMEOUT_MINUTES,
            per_kind_minutes=dict(settings.TENDEROPS_STUCK_TIMEOUTS),
        )

    def minutes_for(self, kind: str) -> int:
        return self.per_kind_minutes.get(kind, self.default_minutes)

    def timed_out(self) -> Q:
        """Rows of annotated ``run_kind`` whose ``started_at`` is past their timeout (DB clock)."""
        overridden = list(self.per_kind_minutes)
        condition = Q(started_at__lt=Now() - timedelta(minutes=self.default_minutes))
        if overridden:
            condition &= ~Q(run_kind__in=overridden)
        for kind, minutes in self.per_kind_minutes.items():
            condition |= Q(run_kind=kind, started_at__lt=Now() - timedelta(minutes=minutes))
        return condition

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_minutes": self.default_minutes,
            "per_kind_minutes": dict(self.per_kind_minutes),
        }


def check_timeout_minutes(value: Any) -> int:
    return limits.TIMEOUT_MINUTES.check(value, "timeout_minutes")


def check_kinds(kinds: Iterable[str]) -> list[str]:
    checked = []
    for kind in kinds:
        if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_KIND_LENGTH:
            raise InvalidParameter(
                _("A kind must be non-empty text of at most %(maximum)d characters.")
                % {"maximum": MAX_KIND_LENGTH}
            )
        checked.append(kind.strip())
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
