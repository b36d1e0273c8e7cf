"""The failure-spike rule: a kind failing far more often in the last hour than in the week
before it.

Among a kind's runs started in the last hour that have finished (``success`` or ``failed``),
the kind spikes when all three hold:

- at least ``TENDEROPS_SPIKE_MIN_FAILURES`` (default 5) of them failed: a couple of failures
  is no spike, whatever the rate;
- the hour's failure rate is at least ``SPIKE_FACTOR`` (3) times the kind's rate over the
  7 days before that hour;
- and at least ``SPIKE_MARGIN`` (20 percentage points) above it, so that a kind going from
  1 % to 3 % does not page anyone.

A kind without finished runs in those 7 days has a weekly rate of 0: a new kind spikes once
it reaches the minimum count at a 20 % failure rate. Runs are placed in time by
``started_at`` (as on the stats page), on the database's clock. The rule runs every
``SPIKE_CHECK_MINUTES`` (runs/schedules.py); the spiking kinds raise one ``failure_spike``
digest, each kind once per cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Now

from runs.maintenance.alerts import AlertEvent, raise_digest, resolve_cleared
from runs.maintenance.db import local_settings
from runs.maintenance.stats import top_errors
from runs.models import TenderRun
from runs.vocabulary import FINISHED_STATUSES, RunStatus

SPIKE_WINDOW = timedelta(hours=1)
BASELINE_WINDOW = timedelta(days=7)
SPIKE_FACTOR = 3
SPIKE_MARGIN = 0.20
SPIKE_CHECK_MINUTES = 10


@dataclass(frozen=True)
class KindFailures:
    kind: str
    hour_finished: int
    hour_failed: int
    week_finished: int
    week_failed: int

    @property
    def hour_rate(self) -> float:
        return self.hour_failed / self.hour_finished if self.hour_finished else 0.0

    @property
    def week_rate(self) -> float:
        return self.week_failed / self.week_finished if self.week_finished else 0.0

    def spiking(self, min_failures: int) -> bool:
        return (
            self.hour_failed >= min_failures
            and self.hour_rate >= SPIKE_FACTOR * self.week_rate
            and self.hour_rate >= self.week_rate + SPIKE_MARGIN
        )


def failures_by_kind() -> list[KindFailures]:
    """The last hour and the 7 days before it, per kind: one pass over the week's runs by
    the (status, started_at) index."""
    hour = Q(started_at__gte=Now() - SPIKE_WINDOW)
    failed = Q(status=RunStatus.FAILED)
    with local_settings(jit="off"):
        rows = (
            TenderRun.objects.with_run_kind()
            .plausible()
            .filter(
                status__in=FINISHED_STATUSES,
                started_at__gte=Now() - SPIKE_WINDOW - BASELINE_WINDOW,
            )
            .order_by()
            .values_list("run_kind")
            .annotate(
                hour_finished=Count("pk", filter=hour),
                hour_failed=Count("pk", filter=hour & failed),
                week_finished=Count("pk", filter=~hour),
                week_failed=Count("pk", filter=~hour & failed),
            )
        )
        return [KindFailures(*row) for row in rows]


def find_failure_spikes(kinds: list[KindFailures] | None = None) -> list[KindFailures]:
    """The spiking ones of ``kinds`` (by default, every kind's failures now)."""
    minimum = settings.TENDEROPS_SPIKE_MIN_FAILURES
    return [
        kind for kind in (failures_by_kind() if kinds is None else kinds) if kind.spiking(minimum)
    ]


def check_failure_spikes() -> list[int]:
    """Raise one ``failure_spike`` digest for the spiking kinds (each kind once per cooldown:
    an outage that fails every kind at once is one message, not one per kind), and
    ``resolved`` for the kinds whose spike is over: runs of the kind finished in the hour, at
    a rate no longer far above its week's (fewer failures than the minimum is no recovery: 4
    of 4 failed still is a spike; nothing finished is no news). Return the alerts' ids."""
    kinds = failures_by_kind()
    spikes = find_failure_spikes(kinds)
    by_kind = {spike.kind: _figures(spike) for spike in spikes}
    # One kind's figures stay where the webhook's readers found them before digests, too.
    flat = {} if len(spikes) != 1 else _flat(by_kind[spikes[0].kind])
    alert_id = raise_digest(AlertEvent.FAILURE_SPIKE, by_kind, flat)
    raised = [] if alert_id is None else [alert_id]
    recovered = [kind.kind for kind in kinds if kind.hour_finished and not kind.spiking(0)]
    still = [spike.kind for spike in spikes]  # two kinds may share a cooldown's key
    resolved = resolve_cleared(AlertEvent.FAILURE_SPIKE, still, only=recovered)
    return raised if resolved is None else [*raised, resolved]


def _figures(spike: KindFailures) -> dict:
    return {
        "count": spike.hour_failed,
        "hour_finished": spike.hour_finished,
        "hour_rate": round(spike.hour_rate, 4),
        "week_rate": round(spike.week_rate, 4),
        "top_error": _top_error(spike.kind),
    }


def _flat(figures: dict) -> dict:
    return {"hour_failed": figures["count"], **{k: v for k, v in figures.items() if k != "count"}}


def _top_error(kind: str) -> str:
    """The hour's most frequent error text of ``kind``."""
    top = top_errors(Now() - SPIKE_WINDOW, kind=kind, limit=1)
    return top[0][0] if top else ""
