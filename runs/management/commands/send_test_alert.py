from django.core.management.base import CommandError

from runs.alerting.channels import CHANNELS
from runs.alerting.delivery import send_test_alert
from runs.maintenance.alerts import CHANNEL_SETTINGS, configured_channels
from runs.management.commands._arguments import RoutineCommand, shell_user
from runs.models import AlertDelivery

EXIT_NOT_SENT = 1
EXIT_NO_CHANNEL = 2


class Command(RoutineCommand):
    help = (
        "Send a test message to every configured alert channel now and show each channel's "
        "answer (exit 0: all sent; 1: a channel did not take it; 2: no channel configured)."
    )

    def handle(self, *args, **options) -> None:
        if not configured_channels():
            raise CommandError(
                f"No alert channel is configured ({', '.join(CHANNEL_SETTINGS.values())}).",
                returncode=EXIT_NO_CHANNEL,
            )
        deliveries = send_test_alert(f"{shell_user()} (manage.py send_test_alert)".lstrip())
        for delivery in deliveries:
            channel = CHANNELS[delivery.channel]
            sent = delivery.status == AlertDelivery.Status.SENT
            style = self.style.SUCCESS if sent else self.style.ERROR
            self.stdout.write(
                f"{channel.label}  {channel.destination()}  "
                + style(delivery.get_status_display())
                + f"  ({delivery.attempts} attempt(s)): {delivery.answer}"
            )
        unsent = [d.channel for d in deliveries if d.status != AlertDelivery.Status.SENT]
        if unsent:
            raise CommandError(
                f"Not sent to: {', '.join(unsent)}. A retry follows where the answer allows one "
                "(see the alert log in the admin).",
                returncode=EXIT_NOT_SENT,
            )
