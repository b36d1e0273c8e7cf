"""The alert log: alerts raised, their deliveries to each channel with every attempt and
answer; a button to send a test message to every channel; a preview of how each robot shows
a message. Read-only: alerts are raised by the routines and delivered by their task."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from runs.admin.display import pretty_json, short_time, truncate
from runs.admin.readonly import ReadOnlyAdmin
from runs.alerting.channels import CHANNELS
from runs.alerting.delivery import OPEN, send_test_alert
from runs.alerting.messages import render
from runs.alerting.preview import previews, sample_alert
from runs.maintenance.alerts import configured_channels
from runs.models import Alert, AlertAttempt, AlertDelivery
from runs.shown_text import labelled, visible

SEND_TEST_PERMISSION = "runs.send_test_alert"
ANSWER_PREVIEW_CHARS = 80
SHOWN_BODY_BYTES = 100_000  # a digest's message on its page: far more than any channel takes
ALL_KINDS_SHOWN = 2_000  # a digest's kinds on its page: every kind, each cut to 200 characters
# What the test button's request spends sending at most, whatever the alert timeout (up to
# 60 s): well within gunicorn's 30 s. The schedule goes on with what is left.
SEND_TEST_SECONDS = 15


def status_badge(status: str, label: str) -> str:
    return format_html('<span class="alert-status alert-status-{}">{}</span>', status, label)


class AlertToolsMixin:
    """The alert log's buttons: a test message to every channel, the robots' preview."""

    change_list_template = "admin/runs/alert/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_send_test": request.user.has_perm(SEND_TEST_PERMISSION),
            "alert_tools": True,
            # Else the log of deliveries is empty, and an operator wonders why.
            "no_channel": not configured_channels(),
        }
        return super().changelist_view(request, extra_context)


class AlertAttemptInline(admin.TabularInline):
    model = AlertAttempt
    fields = ["number", "started", "finished", "result", "http_status", "answer"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["number"]

    @admin.display(description=gettext_lazy("started at"))
    def started(self, attempt: AlertAttempt) -> str:
        return short_time(attempt.started_at)

    @admin.display(description=gettext_lazy("finished at"))
    def finished(self, attempt: AlertAttempt) -> str:
        return short_time(attempt.finished_at)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(AlertToolsMixin, ReadOnlyAdmin):
    """The alert log: what was sent, to which channel, the answer, the retries."""

    change_form_template = "admin/runs/readonly_change_form.html"

    list_display = [
        "raised",
        "event",
        "kinds",
        "channel",
        "status_display",
        "attempts",
        "answer_preview",
        "updated",
    ]
    list_filter = ["channel", "status", "alert__event"]
    list_select_related = ["alert"]
    ordering = ["-pk"]
    show_full_result_count = False
    fields = ["alert", "summary", "channel", "status", "attempts", "next_attempt", "answer"]
    readonly_fields = fields
    inlines = [AlertAttemptInline]

    def changelist_view(self, request, extra_context=None):
        # Named as the home page and every message name it (its rows are deliveries).
        extra_context = {"title": _("Alert log"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description=gettext_lazy("updated at"), ordering="updated_at")
    def updated(self, delivery: AlertDelivery) -> str:
        return short_time(delivery.updated_at)

    @admin.display(description=gettext_lazy("next attempt"))
    def next_attempt(self, delivery: AlertDelivery) -> str:
        return short_time(delivery.next_attempt_at)

    @admin.display(description=gettext_lazy("raised at"), ordering="alert__raised_at")
    def raised(self, delivery: AlertDelivery) -> str:
        return short_time(delivery.alert.raised_at)

    @admin.display(description=gettext_lazy("event"), ordering="alert__event")
    def event(self, delivery: AlertDelivery) -> str:
        return delivery.alert.get_event_display()

    @admin.display(description=gettext_lazy("kind"))
    def kinds(self, delivery: AlertDelivery) -> str:
        return alert_kinds(delivery.alert)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, delivery: AlertDelivery) -> str:
        return status_badge(delivery.status, delivery.get_status_display())

    @admin.display(description=gettext_lazy("answer"))
    def answer_preview(self, delivery: AlertDelivery) -> str:
        return truncate(delivery.answer, ANSWER_PREVIEW_CHARS)

    @admin.display(description=gettext_lazy("message"))
    def summary(self, delivery: AlertDelivery) -> str:
        return format_html('<pre class="run-text">{}</pre>', render(delivery.alert).text(4000))


def alert_kinds(alert: Alert, limit: int = 60) -> str:
    kinds = sorted((alert.facts or {}).get("kinds") or {}) or [alert.kind]
    return truncate(", ".join(k for k in kinds if k), limit)


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    fields = ["channel", "status", "attempts", "next_attempt", "answer"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    @admin.display(description=gettext_lazy("next attempt"))
    def next_attempt(self, delivery: AlertDelivery) -> str:
        return short_time(delivery.next_attempt_at)


@admin.register(Alert)
class AlertAdmin(AlertToolsMixin, ReadOnlyAdmin):
    change_form_template = "admin/runs/readonly_change_form.html"
    list_display = ["raised", "event", "kinds", "title", "deliveries_display"]
    list_filter = ["event"]
    ordering = ["-raised_at", "-pk"]
    show_full_result_count = False
    # The times as every other page shows them; a digest's kinds, not its empty ``kind``.
    fields = [
        "event",
        "all_kinds",
        "raised",
        "title",
        "message_body",
        "message_link",
        "delivered",
        "facts_pretty",
    ]
    readonly_fields = fields
    inlines = [AlertDeliveryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("deliveries")

    def get_urls(self):
        return [
            path(
                "send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="runs_alert_send_test",
            ),
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="runs_alert_preview",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("kind"))
    def kinds(self, alert: Alert) -> str:
        return alert_kinds(alert)

    @admin.display(description=gettext_lazy("kind"))
    def all_kinds(self, alert: Alert) -> str:
        """On its own page, every kind of a digest (the list cuts them to its column)."""
        return alert_kinds(alert, ALL_KINDS_SHOWN)

    @admin.display(description=gettext_lazy("deliveries"))
    def delivered(self, alert: Alert) -> str:
        """On its own page, said when there is none (the table below is then empty)."""
        if not alert.deliveries.all():
            return _("None: no channel was configured when it was raised.")
        return self.deliveries_display(alert)

    @admin.display(description=gettext_lazy("raised at"), ordering="raised_at")
    def raised(self, alert: Alert) -> str:
        return short_time(alert.raised_at)

    @admin.display(description=gettext_lazy("message"))
    def title(self, alert: Alert) -> str:
        """In the page's words, as the text and the link below it: a Chinese title above an
        English text read as two messages. The deliveries show what was sent, as sent."""
        return render(alert, get_language()).title

    @admin.display(description=gettext_lazy("message text"))
    def message_body(self, alert: Alert) -> str:
        """What the message says below its title, in the page's words: the title alone did
        not say which runs, kinds or figures the channels were told."""
        body = render(alert, get_language()).body(SHOWN_BODY_BYTES)
        return format_html('<pre class="run-text">{}</pre>', visible(body)) if body else "–"

    @admin.display(description=gettext_lazy("link"))
    def message_link(self, alert: Alert) -> str:
        """Where the message sends its reader (the runs it names, the statistics): the facts
        below hold only ids."""
        message = render(alert, get_language())  # in the page's words
        return format_html('<a href="{}">{}</a>', message.link, message.link_text)

    @admin.display(description=gettext_lazy("facts"))
    def facts_pretty(self, alert: Alert) -> str:
        return pretty_json(alert.facts)

    @admin.display(description=gettext_lazy("deliveries"))
    def deliveries_display(self, alert: Alert) -> str:
        return format_html_join(
            " ",
            "{}",
            (
                (status_badge(d.status, labelled(d.get_channel_display(), d.get_status_display())),)
                for d in alert.deliveries.all()
            ),
        )

    def send_test_view(self, request: HttpRequest) -> HttpResponse:
        # admin_view checks is_staff only: the permission is checked here.
        if not request.user.has_perm(SEND_TEST_PERMISSION):
            raise PermissionDenied
        results = None
        if request.method == "POST":
            results = send_test_alert(request.user.get_username(), within=SEND_TEST_SECONDS)
        unfinished = [d for d in results or [] if d.status in OPEN]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send a test alert"),
            "opts": self.model._meta,
            "channels": [c for c in CHANNELS.values() if c.configured()],
            "results": results,
            "log_url": reverse("admin:runs_alertdelivery_changelist"),
            # Where the rest of an unfinished delivery shows: the alert's page lists each.
            "unfinished_url": (
                reverse("admin:runs_alert_change", args=[unfinished[0].alert_id])
                if unfinished
                else ""
            ),
            "send_test_seconds": SEND_TEST_SECONDS,
        }
        return TemplateResponse(request, "admin/runs/alert/send_test.html", context)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        alert = sample_alert(request.user.get_username())
        context = {
            **self.admin_site.each_context(request),
            "title": _("How each channel shows a test message"),
            "opts": self.model._meta,
            "previews": previews(alert),
        }
        return TemplateResponse(request, "admin/runs/alert/preview.html", context)
