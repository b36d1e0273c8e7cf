"""The admin site's words: its time zone named on every page, and django-q2's models under
one "Scheduler" heading (the site itself is tenderops.admin_site.ConsoleSite)."""

from __future__ import annotations

from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy, gettext_noop

# django-q2 names its admin section after Q_CLUSTER["label"], read once at import and never
# translated; operators know it as the scheduler. Its pages stay hidden from staff without
# django-q2's permissions, as the admin hides any app a user may not view.
if apps.is_installed("django_q"):
    from django_q.admin import ScheduleAdmin

    apps.get_app_config("django_q").verbose_name = gettext_lazy("Scheduler")
    # Its schedules list headed a column with the identifier "last_run" (LAST_RUN on screen).
    ScheduleAdmin.get_last_run.short_description = gettext_lazy("last run")


# Words of Django's own admin templates that its Simplified Chinese catalogue does not have
# (it predates them); listed here, they come into tenderops' catalogue, which comes first.
DJANGO_ADMIN_WORDS = [
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("- Select an option -"),  # Django 6.1's empty choice of a select
]

# django-q2's words on the scheduler's pages: its catalogue leaves its column headers in
# English and calls its jobs 任务, the word tenderops' pages use for tender runs (失败的任务
# read as failed runs and opened failed background jobs). Translated here, they come first.
DJANGO_Q_WORDS = [
    gettext_noop("Task"),
    gettext_noop("Tasks"),
    gettext_noop("Successful task"),
    gettext_noop("Successful tasks"),
    gettext_noop("Failed task"),
    gettext_noop("Failed tasks"),
    gettext_noop("Scheduled task"),
    gettext_noop("Scheduled tasks"),
    gettext_noop("Queued task"),
    gettext_noop("Queued tasks"),
    gettext_noop("Resubmit selected tasks to queue"),
    gettext_noop("Task id"),
    gettext_noop("Name"),
    gettext_noop("Function"),
    gettext_noop("Hook"),
    gettext_noop("Arguments"),
    gettext_noop("Keyword arguments"),
    gettext_noop("Result"),
    gettext_noop("Group"),
    gettext_noop("Cluster"),
    gettext_noop("Started at"),
    gettext_noop("Stopped at"),
    gettext_noop("Attempt count"),
    gettext_noop("Time Taken"),
    gettext_noop("Short result"),
    gettext_noop("Schedule Type"),
    gettext_noop("Repeats"),
    gettext_noop("Next Run"),
    gettext_noop("Last task id"),
    gettext_noop("Cluster key"),
    gettext_noop("Payload"),
    gettext_noop("Lock until"),
    # The help texts and labels django-q2's catalogue lacks (its forms show them).
    gettext_noop("32-character task identifier."),
    gettext_noop("Optional human-readable name for lookup and display."),
    gettext_noop("Dotted import path to the callable, e.g. myapp.tasks.job."),
    gettext_noop("Optional dotted path to a callback that receives the task result."),
    gettext_noop("Pickled positional arguments (tuple)."),
    gettext_noop("Pickled keyword arguments (dict)."),
    gettext_noop("Pickled return value or error payload."),
    gettext_noop("Optional group id to aggregate related tasks."),
    gettext_noop("Name of the cluster that executed this task."),
    gettext_noop("When the worker started executing the task."),
    gettext_noop("When the worker finished (success or failure)."),
    gettext_noop("False if the task raised an exception or timed out."),
    gettext_noop("How many times execution was attempted."),
    gettext_noop("Optional label to identify this schedule in the admin."),
    gettext_noop("e.g. module.tasks.function"),
    gettext_noop("e.g. module.tasks.result_function"),
    gettext_noop("Cron"),
    gettext_noop("How often this task should be enqueued."),
    gettext_noop("When this schedule runs next (stored in UTC)."),
    gettext_noop("Id of the last task spawned from this schedule (read-only)."),
    gettext_noop("Name of the target cluster"),
    gettext_noop("Intended date kwarg"),
    gettext_noop("Signed serialized task package (do not edit manually)."),
    gettext_noop("Prevent any cluster from pulling until"),
    gettext_noop("Queue options"),
]


def time_zone_label(moment: datetime | None = None) -> str:
    """The zone every time in the admin is shown in, as operators read it: its IANA name and
    its current offset from UTC, e.g. "Asia/Shanghai (UTC+08:00)"."""
    offset = timezone.localtime(moment).strftime("%z")
    if settings.TIME_ZONE == "UTC":
        return "UTC"
    return f"{settings.TIME_ZONE} (UTC{offset[:3]}:{offset[3:]})"
