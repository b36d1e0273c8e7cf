"""tenderops' own tables for alerts and monotonic counters (runs/maintenance/alerts.py,
counters.py; runs/alerting/)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from runs.vocabulary import DeliveryStatus


class AlertEvent(models.TextChoices):
    """What tenderops tells people about (docs/operations.md, "What is alerted")."""

    MONITOR_FAILED = "monitor_failed", _("monitor failed stuck runs")
    STUCK_NOT_FAILED = "stuck_not_failed", _("stuck runs not failed (report mode)")
    WAITING = "waiting", _("runs waiting too long")
    LATE_FINISH = "late_finish", _("late finishes")
    FAILURE_SPIKE = "failure_spike", _("failure spike")
    MONITOR_STALE = "monitor_stale", _("monitor stale")
    MONITOR_RECOVERED = "monitor_recovered", _("monitor recovered")
    RESOLVED = "resolved", _("resolved")
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

    Status = DeliveryStatus

    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("alert")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=AlertChannel.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When a pending or retrying delivery is due; while sending, when its lease ends.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    answer = models.TextField(_("answer"), blank=True, default="")
    updated_at = models.DateTimeField(_("updated at"), db_default=Now())
    # Mail: the recipients the server refused for now while it took the mail for the others,
    # whom the next attempt mails alone; null: every configured one.
    recipients_left = models.JSONField(_("recipients left"), null=True, blank=True)

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
                condition=Q(
                    status__in=[
                        DeliveryStatus.PENDING,
                        DeliveryStatus.RETRYING,
                        DeliveryStatus.SENDING,
                    ]
                ),
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

    delivery = models.ForeignKey(
        AlertDelivery, on_delete=models.CASCADE, related_name="tries", verbose_name=_("delivery")
    )
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
