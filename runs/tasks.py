"""django-q2 task entry points (see runs/schedules.py): log, call the routine, report."""

import logging

from runs.maintenance import late_finish_tick, monitor_tick, retention_tick
from runs.maintenance.stats_snapshot import refresh_stats_snapshot_if_due

logger = logging.getLogger(__name__)


def fail_stuck_runs_task() -> int:
    try:
        result = monitor_tick()
    except Exception:
        logger.exception("stuck-run monitor tick failed")
        raise
    if result.fixed_count:
        logger.warning("monitor failed %d stuck run(s)", result.fixed_count)
    return result.fixed_count


def prune_runs_task() -> dict[str, int]:
    try:
        result = retention_tick()
    except Exception:
        logger.exception("retention tick failed")
        raise
    logger.info("retention deleted %s", result.deleted)
    return result.deleted


def note_late_finishes_task() -> int:
    try:
        noted = late_finish_tick()
    except Exception:
        logger.exception("late-finish sweep failed; the next one notes those runs again")
        raise
    if noted:
        logger.warning("%d runs failed by tenderops were then finished by a worker", len(noted))
    return len(noted)


def deliver_alert_task(alert_id: int) -> dict[str, str]:
    """Queued when an alert is recorded: deliver it (and whatever else is due) now."""
    from runs.alerting.delivery import deliver_from_cluster

    deliveries = deliver_from_cluster(alert_id)
    return {delivery.channel: delivery.status for delivery in deliveries}


def deliver_due_alerts_task() -> int:
    """Every minute: retries that are due, and anything a stopped cluster left behind."""
    from runs.alerting.delivery import deliver_due

    return deliver_due(exclusive=True)


def check_failure_spikes_task() -> int:
    from runs.maintenance.spikes import check_failure_spikes

    return len(check_failure_spikes())


def refresh_stats_task() -> bool:
    """Every minute: refresh the stats page's snapshot when it falls due."""
    return refresh_stats_snapshot_if_due() is not None
