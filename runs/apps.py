from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate, pre_migrate
from django.utils.translation import gettext_lazy as _


class RunsConfig(AppConfig):
    name = "runs"
    # The admin groups runs, projects, alerts and the audit under it: "Home › Operations ›
    # Tender runs", not "Tender runs" twice.
    verbose_name = _("Operations")

    def ready(self) -> None:
        from runs import checks  # noqa: F401 - registers the system checks
        from runs.infinite_timestamps import tolerate_infinite_timestamps
        from runs.migrations._indexes import require_owner_before_the_plan
        from runs.schedules import sync_after_migrate

        connection_created.connect(tolerate_infinite_timestamps, dispatch_uid="tenderops-infinity")
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="tenderops-schedules")
        pre_migrate.connect(
            require_owner_before_the_plan, sender=self, dispatch_uid="tenderops-owner"
        )
