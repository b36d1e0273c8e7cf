"""tenderops' own tables: the audit log, heartbeats, observations of runs, the stats snapshot."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models.functions import Left, Now
from django.utils.translation import gettext_lazy as _

from runs.vocabulary import FailReason


class Actor(models.TextChoices):
    USER = "user", _("user")
    SCHEDULE = "schedule", _("schedule")
    CLI = "cli", _("command line")
    API = "api", _("API")


class MaintenanceAction(models.Model):
    """One change made by a routine: who, when, with which parameters, how many rows."""

    class Kind(models.TextChoices):
        FAIL_STUCK = "fail_stuck", _("fail stuck runs")
        WOULD_FAIL = "would_fail", _("would fail stuck runs (report mode)")
        MARK_FAILED = "mark_failed", _("mark runs failed")
        PRUNE = "prune", _("prune old runs")

    # The parameter naming the first action of a cleanup done in batches (one action each).
    CONTINUES = "continues_action"
    # The actions that fail runs (the monitor's cleanups and people's): what the stats page,
    # the late finishes and the audit count as failed by tenderops.
    FAILING_KINDS = (Kind.FAIL_STUCK, Kind.MARK_FAILED)

    kind = models.CharField(_("action"), max_length=20, choices=Kind.choices)
    actor = models.CharField(_("actor"), max_length=20, choices=Actor.choices)
    username = models.CharField(_("user"), max_length=150, blank=True, default="")
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict)
    reason = models.TextField(_("reason"), blank=True, default="")
    affected_count = models.PositiveIntegerField(_("runs"), default=0)
    completed = models.BooleanField(_("completed"), default=False)
    # The monitor's failings not yet told in an alert: set in each batch's own statement,
    # cleared with the digest that tells them. A tick stopped between its batches and its
    # digest (killed, or the digest failed) leaves them for the next tick to tell.
    alert_pending = models.BooleanField(_("alert pending"), default=False, db_default=False)
    # A failing whose kinds were all told within the alert cooldown waits until this moment
    # (the first of their cooldowns' ends): no tick tries to tell it before.
    alert_due_at = models.DateTimeField(_("alert due at"), null=True, blank=True)

    class Meta:
        db_table = "tenderops_maintenance_action"
        verbose_name = _("maintenance action")
        verbose_name_plural = _("maintenance actions")
        indexes = [
            models.Index(fields=["kind", "started_at"], name="tenderops_action_kind"),
            # Asked by every monitor tick; the few actions in it, whatever the audit's size.
            models.Index(
                fields=["id"],
                name="tenderops_action_untold",
                condition=models.Q(alert_pending=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class FailedRunRecordQuerySet(models.QuerySet):
    def of_failings(self) -> FailedRunRecordQuerySet:
        """Records of runs tenderops failed (by the monitor, a command, the API or a person),
        not report mode's "would fail", which failed nothing."""
        return self.filter(action__kind__in=MaintenanceAction.FAILING_KINDS)

    def run_ids_of(self, action_ids: Iterable[int]) -> models.QuerySet:
        """The ids of the runs ``action_ids`` recorded, as a subquery."""
        return self.filter(action_id__in=list(action_ids)).values("run_id")

    def with_text_starts(self) -> FailedRunRecordQuerySet:
        """The overwritten message's and error's beginnings (``message_start``,
        ``error_start``) instead of the texts: pages show 200 characters of each, and a run
        failed a few times with megabytes of text took seconds to show."""
        return self.defer("previous_message", "previous_error").annotate(
            message_start=Left("previous_message", TEXT_START_CHARS),
            error_start=Left("previous_error", TEXT_START_CHARS),
        )


# More than pages show of an overwritten text, so that they can say it was cut.
TEXT_START_CHARS = 201


class FailedRunRecord(models.Model):
    """What a failing overwrote on one run.

    ``run_id`` is no foreign key: the history outlives the run's pruning.
    """

    # No database constraint: the only writer inserts the records in the same statement as
    # their action, and the constraint's deferred check cost a lookup per audited run at commit
    # (about 1 ms of a 200-run monitor tick on the bench's 10 M-run database).
    action = models.ForeignKey(
        MaintenanceAction,
        on_delete=models.CASCADE,
        related_name="failed_runs",
        db_constraint=False,
    )
    run_id = models.TextField(_("run"))
    previous_status = models.TextField(_("previous status"))
    previous_message = models.TextField(_("previous message"), null=True, blank=True)
    previous_error = models.TextField(_("previous error"), null=True, blank=True)
    previous_finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(
        _("why"), max_length=20, choices=FailReason.choices, default=FailReason.AGE
    )
    silent_minutes = models.FloatField(_("silent minutes"), null=True, blank=True)
    # When a worker was seen setting the run to success after tenderops failed it.
    finished_late_at = models.DateTimeField(_("finished late at"), null=True, blank=True)

    objects = FailedRunRecordQuerySet.as_manager()

    class Meta:
        db_table = "tenderops_failed_run"
        # Found by exact run id only: a plain index, without the LIKE twin that db_index adds
        # to a text field and that every audited run would pay for.
        indexes = [
            models.Index(fields=["run_id"], name="tenderops_failed_run_run"),
            # The late finishes the stats page counts: few, whatever the audit's size.
            models.Index(
                fields=["finished_late_at"],
                name="tenderops_failed_run_late",
                condition=models.Q(finished_late_at__isnull=False),
            ),
        ]
        verbose_name = _("failed run record")
        verbose_name_plural = _("failed run records")

    def __str__(self) -> str:
        return f"{self.run_id} ({self.previous_status} → failed)"


class Heartbeat(models.Model):
    """The last tick of a scheduled routine, read by the health endpoint and the stats page."""

    name = models.CharField(_("name"), max_length=40, primary_key=True)
    last_finished_at = models.DateTimeField(_("last finished"))
    last_result = models.JSONField(_("last result"), default=dict)

    class Meta:
        db_table = "tenderops_heartbeat"
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return self.name


class RunObservation(models.Model):
    """What tenderops last saw of one active run (pending or running): its fingerprint, when
    it first saw the run, when it last saw the fingerprint change and how often it did.
    Nothing is added to ``tender_runs``; the statement that fails a run removes its row, and
    the next observation those of runs finished otherwise (runs.maintenance.liveness)."""

    # A one-to-one link without a constraint (the run may be deleted by the backend first):
    # the queries that judge runs join it once, instead of looking each column up apart.
    run = models.OneToOneField(
        "runs.TenderRun",
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_column="run_id",
        db_constraint=False,
        related_name="observation",
        verbose_name=_("run"),
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=32)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_change_at = models.DateTimeField(_("last change seen"), null=True, blank=True)
    changes = models.PositiveIntegerField(_("changes seen"), default=0)
    # When a worker first picked the run up, as far as tenderops knows: the observation that
    # first saw it running after pending, or its start if it was running when first seen (no
    # better is known); kept if it is queued again (a run a worker takes, crashes on and
    # requeues must still meet its end). None until then. The maximum runtime counts from it.
    running_since = models.DateTimeField(_("running since"), null=True, blank=True)

    class Meta:
        db_table = "tenderops_run_observation"
        verbose_name = _("run observation")
        verbose_name_plural = _("run observations")

    def __str__(self) -> str:
        return self.run_id


class StatsSnapshot(models.Model):
    """The stats page's figures as last computed (runs.maintenance.stats_snapshot): one row,
    refreshed by the cluster at most once per TENDEROPS_STATS_MAX_AGE_SECONDS and by staff on
    demand; the page reads only this. A failed refresh keeps the last figures and says why."""

    name = models.CharField(_("name"), max_length=40, primary_key=True)
    computed_at = models.DateTimeField(_("counts as of"), null=True, blank=True)
    data = models.JSONField(_("figures"), default=dict)
    seconds = models.FloatField(_("seconds to compute"), default=0)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        db_table = "tenderops_stats_snapshot"
        verbose_name = _("stats snapshot")
        verbose_name_plural = _("stats snapshots")

    def __str__(self) -> str:
        return self.name
