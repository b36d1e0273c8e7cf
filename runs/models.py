"""The tender backend's tables (adopted, never reshaped) and tenderops' own audit log.

``tender_projects`` and ``tender_runs`` belong to the tender backend. Migration 0001 creates
them only where they do not exist yet (tests, the demo); on the live database it leaves them
exactly as they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from django.db import models
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat, Greatest, Now, NullIf
from django.utils.translation import gettext_lazy as _

from runs.limits import EARLIEST_START, START_SKEW
from runs.vocabulary import ACTIVE_STATUSES, WHITESPACE, FailReason, RunStatus, run_kind


class TenderProject(models.Model):
    id = models.TextField(primary_key=True)
    kb_id = models.TextField()
    name = models.TextField(_("name"))
    description = models.TextField(null=True, blank=True)
    owner_id = models.CharField(max_length=36, null=True, blank=True)
    status = models.TextField(db_default="draft")
    meta_json = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "tender_projects"
        verbose_name = _("tender project")
        verbose_name_plural = _("tender projects")
        indexes = [
            models.Index(fields=["kb_id"], name="idx_tender_projects_kb"),
            models.Index(fields=["owner_id"], name="idx_tender_projects_owner"),
        ]

    def __str__(self) -> str:
        return self.name


class StripWhitespace(models.Func):
    """``btrim(text, characters)``; SQLite calls it ``trim``."""

    function = "btrim"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="trim", **extra_context)


class StuckJudge(Protocol):
    """What ``TenderRunQuerySet.stuck`` asks of a policy (runs.maintenance.policy)."""

    def stuck_condition(self) -> Q: ...

    def reason(self) -> models.Expression: ...


class FingerprintHash(models.Func):
    """A text's hash, as text: MD5 in general; on PostgreSQL ``hashtextextended`` (64 bits),
    a tenth of the cost of its md5 per call (2,000 active runs: 0.9 ms against 2.7 ms of a
    quiet tick's observation). A changed fingerprint only needs to differ: a collision
    (2^-64) would hide one change. Upgrading from the md5 fingerprints counts as one change of
    every active run, once (a sign of life at the upgrade)."""

    function = "MD5"
    arity = 1
    output_field = models.CharField(max_length=32)

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "CAST(hashtextextended(%(expressions)s, 0) AS text)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def fingerprint() -> models.Func:
    """What a worker's signs of life change: ``status``, ``progress`` and ``message``, hashed.
    The observation statement and the failing guard compare exactly this expression."""
    text = models.TextField()
    absent = Value("\x01", output_field=text)  # tells NULL from an empty message
    parts = [
        Coalesce("status", absent),
        Coalesce(Cast("progress", text), absent),
        Coalesce("message", absent),
    ]
    separator = Value("\x02", output_field=text)
    return FingerprintHash(
        Concat(parts[0], separator, parts[1], separator, parts[2], output_field=text)
    )


class TenderRunQuerySet(models.QuerySet):
    """The named sets of runs that the routines, the admin and the API speak of."""

    def with_run_kind(self) -> TenderRunQuerySet:
        """Annotate ``run_kind``: the kind to show and to match timeouts on; an empty or blank
        ``kind`` counts as missing (``runs.vocabulary.run_kind`` is the same rule in Python)."""
        text = models.TextField()
        trimmed = StripWhitespace("kind", Value(WHITESPACE, output_field=text), output_field=text)
        missing = Value("", output_field=text)
        return self.annotate(run_kind=Coalesce(NullIf(trimmed, missing), "run_type"))

    def plausible(self) -> TenderRunQuerySet:
        """Runs whose ``started_at`` can be true: never before EARLIEST_START, never beyond
        the database's clock plus START_SKEW (so never +/-infinity). Only comparisons: no
        arithmetic on a stored timestamp, which raises on an infinite one."""
        return self.filter(started_at__gte=EARLIEST_START, started_at__lt=Now() + START_SKEW)

    def impossible_start(self) -> TenderRunQuerySet:
        return self.filter(Q(started_at__lt=EARLIEST_START) | Q(started_at__gte=Now() + START_SKEW))

    def running(self) -> TenderRunQuerySet:
        return self.filter(status=RunStatus.RUNNING)

    def active(self) -> TenderRunQuerySet:
        """Runs still in the workers' hands: pending or running."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def of_unknown_status(self) -> TenderRunQuerySet:
        return self.exclude(status__in=RunStatus.values)

    def with_last_sign_of_life(self) -> TenderRunQuerySet:
        """Annotate ``last_change_at`` (the last change tenderops observed, if any) and
        ``last_sign_of_life``: the later of ``started_at`` and that change."""
        observed = RunObservation.objects.filter(run_id=OuterRef("pk"))
        return self.annotate(
            last_change_at=Subquery(observed.values("last_change_at")[:1])
        ).annotate(
            last_sign_of_life=Greatest("started_at", Coalesce("last_change_at", "started_at"))
        )

    def with_liveness(self) -> TenderRunQuerySet:
        """Annotate what tenderops observed of each run (runs.maintenance.liveness): the
        fingerprint then and now, when it first saw the run, how many changes it saw, and
        the last sign of life (``with_last_sign_of_life``)."""
        observed = RunObservation.objects.filter(run_id=OuterRef("pk"))

        def seen(field: str) -> Subquery:
            return Subquery(observed.values(field)[:1])

        return self.with_last_sign_of_life().annotate(
            observed_fingerprint=seen("fingerprint"),
            first_seen_at=seen("first_seen_at"),
            observed_changes=seen("changes"),
            fingerprint_now=fingerprint(),
        )

    def unchanged_since_observed(self) -> TenderRunQuerySet:
        """Runs whose fingerprint is still the one observed (or that were never observed):
        checked on the locked row by the failing statement, so a run that writes progress
        at the instant of a tick is never failed."""
        return self.filter(
            Q(observed_fingerprint__isnull=True) | Q(observed_fingerprint=F("fingerprint_now"))
        )

    def stuck(self, judge: StuckJudge) -> TenderRunQuerySet:
        """The single definition of "stuck": what ``judge`` (the stuck policy) says, on runs
        with a plausible start, annotated with ``fail_reason``."""
        return (
            self.with_run_kind()
            .with_liveness()
            .plausible()
            .filter(judge.stuck_condition())
            .annotate(fail_reason=judge.reason())
        )

    def waiting(self, minutes: int) -> TenderRunQuerySet:
        """Pending runs whose last sign of life is older than ``minutes``."""
        return (
            self.with_run_kind()
            .with_liveness()
            .plausible()
            .filter(
                status=RunStatus.PENDING, last_sign_of_life__lt=Now() - timedelta(minutes=minutes)
            )
        )

    def expired(self, status: str, cutoff: datetime) -> TenderRunQuerySet:
        """Finished runs of ``status`` started before ``cutoff``: what retention deletes.
        Bounded below, so a run started at '-infinity' is never deleted by it."""
        return self.filter(status=status, started_at__gte=EARLIEST_START, started_at__lt=cutoff)


class TenderRun(models.Model):
    id = models.TextField(primary_key=True)
    project = models.ForeignKey(
        TenderProject,
        on_delete=models.CASCADE,
        db_column="project_id",
        db_index=False,  # idx_tender_runs_project is the live index on it
        related_name="runs",
        verbose_name=_("project"),
    )
    run_type = models.TextField(_("run type"))
    status = models.TextField(_("status"), db_default=RunStatus.PENDING)
    model_id = models.TextField(_("model"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), null=True, blank=True)
    meta_json = models.JSONField(_("meta"), default=dict)
    kind = models.TextField(_("kind column"), null=True, blank=True)
    progress = models.FloatField(_("progress"), null=True, blank=True)
    message = models.TextField(_("message"), null=True, blank=True)
    result_json = models.JSONField(_("result"), null=True, blank=True)
    platform_job_id = models.TextField(_("platform job id"), null=True, blank=True)

    objects = TenderRunQuerySet.as_manager()

    class Meta:
        db_table = "tender_runs"
        verbose_name = _("tender run")
        verbose_name_plural = _("tender runs")
        permissions = [("mark_failed_tenderrun", _("Can mark tender runs failed"))]
        indexes = [
            # The live table also has idx_tender_runs_platform_job_id, created with the table
            # (runs/tender_live.sql); its name is too long for Django's index checks (E034).
            models.Index(fields=["project"], name="idx_tender_runs_project"),
            # tenderops' own, created CONCURRENTLY by migration 0003 (chosen by EXPLAIN):
            # stuck detection scans only the few running rows.
            models.Index(
                fields=["started_at"],
                name="tenderops_running_started",
                condition=Q(status=RunStatus.RUNNING),
            ),
            # the observation reads every active run: pending ones through this one (0004).
            models.Index(
                fields=["started_at"],
                name="tenderops_pending_started",
                condition=Q(status=RunStatus.PENDING),
            ),
            # retention batches and status filters, in started_at order.
            models.Index(fields=["status", "started_at"], name="tenderops_status_started"),
            # the admin list's default ordering (-started_at, -id) and date ranges.
            models.Index(fields=["started_at", "id"], name="tenderops_started_id"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def display_kind(self) -> str:
        return run_kind(self.kind, self.run_type)


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

    kind = models.CharField(_("action"), max_length=20, choices=Kind.choices)
    actor = models.CharField(_("actor"), max_length=20, choices=Actor.choices)
    username = models.CharField(_("user"), max_length=150, blank=True, default="")
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict)
    reason = models.TextField(_("reason"), blank=True, default="")
    affected_count = models.PositiveIntegerField(_("rows changed"), default=0)
    completed = models.BooleanField(_("completed"), default=False)

    class Meta:
        db_table = "tenderops_maintenance_action"
        verbose_name = _("maintenance action")
        verbose_name_plural = _("maintenance actions")
        indexes = [models.Index(fields=["kind", "started_at"], name="tenderops_action_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


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

    class Meta:
        db_table = "tenderops_failed_run"
        # Found by exact run id only: a plain index, without the LIKE twin that db_index adds
        # to a text field and that every audited run would pay for.
        indexes = [models.Index(fields=["run_id"], name="tenderops_failed_run_run")]
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
    Nothing is added to ``tender_runs``; rows of finished runs are removed by the next
    observation (runs.maintenance.liveness)."""

    run_id = models.TextField(_("run"), primary_key=True)
    fingerprint = models.CharField(_("fingerprint"), max_length=32)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_change_at = models.DateTimeField(_("last change seen"), null=True, blank=True)
    changes = models.PositiveIntegerField(_("changes seen"), default=0)

    class Meta:
        db_table = "tenderops_run_observation"
        verbose_name = _("run observation")
        verbose_name_plural = _("run observations")

    def __str__(self) -> str:
        return self.run_id


# --- alerts and counters (runs/maintenance/alerts.py, counters.py; runs/alerting/) -----------


class AlertEvent(models.TextChoices):
    """What tenderops tells people about (PRODUCT.md, "Alerts")."""

    MONITOR_FAILED = "monitor_failed", _("monitor failed stuck runs")
    STUCK_NOT_FAILED = "stuck_not_failed", _("stuck runs not failed (report mode)")
    WAITING = "waiting", _("runs waiting too long")
    LATE_FINISH = "late_finish", _("late finishes")
    FAILURE_SPIKE = "failure_spike", _("failure spike")
    MONITOR_STALE = "monitor_stale", _("monitor stale")
    MONITOR_RECOVERED = "monitor_recovered", _("monitor recovered")
    TEST = "test", _("test message")


class AlertChannel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    WEBHOOK = "webhook", _("JSON webhook")
    WECOM = "wecom", _("WeCom")
    DINGTALK = "dingtalk", _("DingTalk")
    FEISHU = "feishu", _("Feishu / Lark")


class Alert(models.Model):
    """One alert as raised: recorded by the routines, delivered by a task to every channel."""

    event = models.CharField(_("event"), max_length=40, choices=AlertEvent.choices)
    # The kind of a per-kind alert; a digest names its kinds in ``facts["kinds"]``.
    kind = models.TextField(_("kind"), blank=True, default="")
    facts = models.JSONField(_("facts"), default=dict)
    raised_at = models.DateTimeField(_("raised at"), db_default=Now())

    class Meta:
        db_table = "tenderops_alert"
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [models.Index(fields=["raised_at"], name="tenderops_alert_raised")]
        permissions = [("send_test_alert", _("Can send a test alert"))]

    def __str__(self) -> str:
        return f"{self.get_event_display()} #{self.pk}"


class AlertGate(models.Model):
    """The cooldown of each (event, kind): when it last let an alert through; ``open`` while
    an incident (the monitor stale) is raised and not yet resolved."""

    event = models.CharField(max_length=40, choices=AlertEvent.choices)
    kind = models.TextField(blank=True, default="")
    last_raised_at = models.DateTimeField()
    open = models.BooleanField(default=False)

    class Meta:
        db_table = "tenderops_alert_gate"
        constraints = [
            models.UniqueConstraint(fields=["event", "kind"], name="tenderops_alert_gate_key")
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.kind}"


class AlertDelivery(models.Model):
    """One alert to one channel: its state and its last answer."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        RETRYING = "retrying", _("retrying")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        MISCONFIGURED = "misconfigured", _("configuration error")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(_("channel"), max_length=20, choices=AlertChannel.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When a pending or retrying delivery is due; while sending, when its lease ends.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    answer = models.TextField(_("answer"), blank=True, default="")
    updated_at = models.DateTimeField(_("updated at"), db_default=Now())

    class Meta:
        db_table = "tenderops_alert_delivery"
        verbose_name = _("alert delivery")
        verbose_name_plural = _("alert deliveries")
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="tenderops_delivery_key")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="tenderops_delivery_due",
                condition=Q(status__in=["pending", "retrying", "sending"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert} → {self.get_channel_display()}"


class AlertAttempt(models.Model):
    """One try of a delivery: when, what the channel answered, what came of it."""

    class Result(models.TextChoices):
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        ERROR = "error", _("network or server error")
        THROTTLED = "throttled", _("throttled")
        REJECTED = "rejected", _("rejected")
        MISCONFIGURED = "misconfigured", _("configuration error")

    delivery = models.ForeignKey(AlertDelivery, on_delete=models.CASCADE, related_name="tries")
    channel = models.CharField(_("channel"), max_length=20, choices=AlertChannel.choices)
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=20, choices=Result.choices)
    http_status = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    answer = models.TextField(_("answer"), blank=True, default="")
    # A throttled channel sends nothing until then.
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)

    class Meta:
        db_table = "tenderops_alert_attempt"
        verbose_name = _("alert attempt")
        verbose_name_plural = _("alert attempts")
        indexes = [models.Index(fields=["channel", "started_at"], name="tenderops_attempt_window")]

    def __str__(self) -> str:
        return f"{self.delivery} #{self.number}"


class Counter(models.Model):
    """A monotonic counter for /metrics (runs/maintenance/counters.py): only ever increased,
    in a table retention never prunes."""

    name = models.CharField(max_length=100)
    labels = models.JSONField(default=dict)
    value = models.BigIntegerField(default=0)

    class Meta:
        db_table = "tenderops_counter"
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"], name="tenderops_counter_key")
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"


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
