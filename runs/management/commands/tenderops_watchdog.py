from django.core.management.base import CommandError

from runs.adoption import ADVICE
from runs.alerting.channels import CHANNELS
from runs.alerting.delivery import alert_on_health
from runs.maintenance import monitor_health
from runs.maintenance.db import limit_lock_waits
from runs.management.commands._arguments import RoutineCommand, local_time
from runs.models import AlertDelivery

EXIT_STALE = 1


class Command(RoutineCommand):
    help = (
        "Check the monitor from outside the cluster (cron, a systemd timer): when it is stale, "
        "send the 'monitor stale' alert (once per cooldown) from this process and exit 1; "
        "when it runs again, send 'recovered' once and exit 0. Exits 1 too while tender_runs' "
        "column types would make the monitor misjudge runs (manage.py check says which)."
    )

    def handle(self, *args, **options) -> None:
        limit_lock_waits()  # run by cron: never still waiting when the next one starts
        health = monitor_health()
        alert_id = alert_on_health(health, source="watchdog", background=False)
        last = local_time(health.last_run_at) if health.last_run_at else "never"
        sent = _told(alert_id)
        # A drifted table is said even while the monitor runs (its quiet ticks find nothing
        # stuck); a stale monitor is said first, its steps being the ones to take first.
        table = f" {'; '.join(health.table_problems)}. {ADVICE}." if health.table_problems else ""
        if health.stale:
            raise CommandError(
                f"The monitor is stale: last run {last}, expected every "
                f"{health.interval_minutes} min. Is `manage.py qcluster` running?{table}{sent}",
                returncode=EXIT_STALE,
            )
        if table:
            raise CommandError(f"{table.strip()}{sent}", returncode=EXIT_STALE)
        if health.starting:
            self.stdout.write("The monitor is starting: a fresh install has not ticked yet.")
            return
        self.stdout.write(self.style.SUCCESS(f"The monitor is running: last run {last}.{sent}"))


def _told(alert_id: int | None) -> str:
    """What became of the alert this run raised, channel by channel ("sent" only when it was:
    a robot that refused it is retried by the next run while the monitor is stale)."""
    if alert_id is None:
        return ""
    deliveries = AlertDelivery.objects.filter(alert_id=alert_id).order_by("channel")
    told = ", ".join(f"{CHANNELS[d.channel].label} {d.get_status_display()}" for d in deliveries)
    return f" (alert #{alert_id}: {told or 'no channel'})"
