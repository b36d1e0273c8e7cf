"""Retention of tenderops' own history: the audit (actions and the failed-run records under
them) and the alerts (with their deliveries and attempts) older than
TENDEROPS_RETENTION_HISTORY_DAYS, deleted by the daily retention in short batches.

Without it both grow for ever: every failed run leaves a record, a fleet-wide crash 100,000
at once. The counters (``tenderops_*_total``) are not touched: they never go down. An alert
whose delivery is still under way is kept, whatever its age, and so is a failing not yet
told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet

from runs.maintenance.db import db_now
from runs.models import Alert, AlertDelivery, FailedRunRecord, MaintenanceAction

# Rows per transaction: a day's history is small, a year after a fleet-wide crash is not.
HISTORY_BATCH = 5_000
# Deliveries that may still send: their alert stays.
UNFINISHED_DELIVERIES = [
    AlertDelivery.Status.PENDING,
    AlertDelivery.Status.RETRYING,
    AlertDelivery.Status.SENDING,
]


@dataclass(frozen=True)
class HistoryPruneResult:
    cutoff: datetime
    actions: int
    records: int
    alerts: int

    def as_dict(self) -> dict[str, int | str]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "actions": self.actions,
            "records": self.records,
            "alerts": self.alerts,
        }


def prune_history(
    days: int | None = None, *, batch_size: int = HISTORY_BATCH
) -> HistoryPruneResult:
    """Delete the audit and the alerts older than ``days`` (default
    TENDEROPS_RETENTION_HISTORY_DAYS), ``batch_size`` rows per transaction: first the
    records of old actions, then the old actions (none has a record left), then old alerts."""
    keep = days if days is not None else settings.TENDEROPS_RETENTION_HISTORY_DAYS
    cutoff = db_now() - timedelta(days=keep)
    # A failing not yet told (runs.maintenance.telling) stays, records and all: its alert
    # counts them when it is told.
    records = _delete_in_batches(
        FailedRunRecord.objects.filter(action__started_at__lt=cutoff, action__alert_pending=False),
        batch_size,
    )
    actions = _delete_in_batches(
        MaintenanceAction.objects.filter(
            started_at__lt=cutoff, alert_pending=False, failed_runs__isnull=True
        ),
        batch_size,
    )
    old_alerts = Alert.objects.filter(raised_at__lt=cutoff).exclude(
        deliveries__status__in=UNFINISHED_DELIVERIES
    )
    # An alert's deletion takes its deliveries and their attempts with it.
    alerts = _delete_in_batches(old_alerts, max(1, batch_size // 10), count=Alert)
    return HistoryPruneResult(cutoff=cutoff, actions=actions, records=records, alerts=alerts)


def _delete_in_batches(rows: QuerySet, size: int, *, count: type[Model] | None = None) -> int:
    """Delete ``rows`` by primary key, ``size`` at a time, each batch its own transaction;
    return how many rows were deleted (of model ``count``, where a deletion cascades)."""
    label = (count or rows.model)._meta.label
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(rows.order_by("pk").values_list("pk", flat=True)[:size])
            if not batch:
                return deleted
            # The batch's condition holds again at the deletion (an alert may have been queued
            # again meanwhile: it stays).
            _total, by_model = rows.filter(pk__in=batch).delete()
            deleted += by_model.get(label, 0)
