"""The runs admin: a read-only list built for tens of millions of rows, and a detail page
with the run's JSON and its audit history. The action and the extra pages are mixins."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.actions import MarkFailedMixin
from runs.admin.display import (
    duration,
    duration_formats,
    percent,
    pretty_json,
    short_time,
    span_between,
    truncate,
)
from runs.admin.filters import (
    ActionFilter,
    KindFilter,
    LivenessFilter,
    ProjectFilter,
    StartedFilter,
    StatusFilter,
    StuckFilter,
)
from runs.admin.pagination import EstimatedCountPaginator, RunChangeList
from runs.admin.readonly import ReadOnlyAdmin
from runs.admin.views import MaintenanceViewsMixin
from runs.infinite_timestamps import is_infinite
from runs.maintenance import db_now
from runs.models import FailedRunRecord, RunObservation, TenderRun
from runs.vocabulary import ACTIVE_STATUSES, RunStatus

MESSAGE_PREVIEW_CHARS = 80
SEARCH_WINDOW = timedelta(days=30)

# The runs list needs the width more than the sidebar of other apps.
admin.site.enable_nav_sidebar = False


@admin.register(TenderRun)
class TenderRunAdmin(MarkFailedMixin, MaintenanceViewsMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "project_link",
        "kind_display",
        "status_badge",
        "progress_bar",
        "elapsed",
        "last_sign_of_life",
        "started",
        "finished",
        "message_preview",
    ]
    list_display_links = ["id"]
    list_filter = [
        StatusFilter,
        KindFilter,
        StuckFilter,
        LivenessFilter,
        StartedFilter,
        ProjectFilter,
        ActionFilter,
    ]
    search_fields = ["=id"]
    search_help_text = gettext_lazy(
        "A run id (tr_…) or project id (tp_…) matches exactly; other text searches project "
        "names, messages and errors of runs started in the last 30 days (or the chosen range)."
    )
    ordering = ["-started_at"]
    list_per_page = 50
    list_max_show_all = 200
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["mark_failed"]
    change_list_template = "admin/runs/tenderrun/change_list.html"
    change_form_template = "admin/runs/tenderrun/change_form.html"
    fields = [
        "id",
        "project_link",
        "run_type",
        "kind",
        "status_badge",
        "progress_bar",
        "model_id",
        "started",
        "finished",
        "elapsed",
        "observation",
        "message_full",
        "error_full",
        "meta_pretty",
        "result_pretty",
        "platform_job_id",
        "audit_history",
    ]
    readonly_fields = fields

    # -- the list

    def changelist_view(self, request, extra_context=None):
        # The live counter (admin.js) writes durations with these, the server's own words.
        extra_context = {**(extra_context or {}), "duration_formats": duration_formats()}
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def get_queryset(self, request) -> QuerySet[TenderRun]:
        # Heavy columns stay in the database; the list needs a preview of the message only.
        return (
            super()
            .get_queryset(request)
            .select_related("project")
            .only(
                "id",
                "run_type",
                "kind",
                "status",
                "progress",
                "started_at",
                "finished_at",
                "project__id",
                "project__name",
            )
            .annotate(message_start=Left("message", MESSAGE_PREVIEW_CHARS + 1))
            .with_last_sign_of_life()
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith(("tr_", "tp_")):
            return queryset.filter(Q(pk=term) | Q(project_id=term)), False
        if not any(key in request.GET for key in ("started", "started_from", "started_to")):
            queryset = queryset.filter(started_at__gte=db_now() - SEARCH_WINDOW)
        matches = (
            Q(project__name__icontains=term) | Q(message__icontains=term) | Q(error__icontains=term)
        )
        return queryset.filter(matches), False

    @admin.display(description=gettext_lazy("project"), ordering="project__name")
    def project_link(self, run: TenderRun) -> str:
        url = reverse("admin:runs_tenderrun_changelist")
        return format_html(
            '<a href="{}?{}" title="{}">{}</a>',
            url,
            urlencode({"project": run.project_id}),
            run.project_id,
            truncate(run.project.name, 30) or run.project_id,
        )

    @admin.display(description=gettext_lazy("kind"))
    def kind_display(self, run: TenderRun) -> str:
        return run.display_kind

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, run: TenderRun) -> str:
        known = run.status in RunStatus.values
        return format_html(
            '<span class="run-status run-status-{}" title="{}">{}</span>',
            run.status if known else "unknown",
            run.status,
            RunStatus.label_of(run.status) if known else truncate(run.status, 20),
        )

    @admin.display(description=gettext_lazy("progress"))
    def progress_bar(self, run: TenderRun) -> str:
        share = percent(run.progress)
        if share is None:
            return "–" if run.progress is None else format_html("<span>{}</span>", run.progress)
        return format_html(
            '<span class="run-progress" title="{}%"><span style="width: {}%"></span></span> {}%',
            share,
            share,
            share,
        )

    @admin.display(description=gettext_lazy("last sign of life"))
    def last_sign_of_life(self, run: TenderRun) -> str:
        """How long ago an active run last showed a sign of life (its start, or the last
        change tenderops observed in its status, progress or message)."""
        moment = getattr(run, "last_sign_of_life", None)
        if run.status not in ACTIVE_STATUSES or moment is None or is_infinite(moment):
            return "–"
        return format_html(
            '<span class="run-live" data-started="{}" title="{}">{}</span>',
            moment.isoformat(),
            short_time(moment),
            duration(timezone.now() - moment),
        )

    @admin.display(description=gettext_lazy("observed by tenderops"))
    def observation(self, run: TenderRun) -> str:
        seen = RunObservation.objects.filter(run_id=run.pk).first()
        if seen is None:
            return _("Not observed (tenderops observes pending and running runs).")
        return format_html(
            "{}: {} · {}: {} · {}: {}",
            _("first seen"),
            short_time(seen.first_seen_at),
            _("last change seen"),
            short_time(seen.last_change_at),
            _("changes seen"),
            seen.changes,
        )

    @admin.display(description=gettext_lazy("running / elapsed"))
    def elapsed(self, run: TenderRun) -> str:
        if run.finished_at is not None:
            return span_between(run.started_at, run.finished_at)
        if run.status not in ACTIVE_STATUSES or is_infinite(run.started_at):
            return "–"
        started = run.started_at
        return format_html(
            '<span class="run-live" data-started="{}">{}</span>',
            started.isoformat(),
            duration(timezone.now() - started),
        )

    @admin.display(description=gettext_lazy("started at"), ordering="started_at")
    def started(self, run: TenderRun) -> str:
        return short_time(run.started_at)

    @admin.display(description=gettext_lazy("finished at"), ordering="finished_at")
    def finished(self, run: TenderRun) -> str:
        return short_time(run.finished_at)

    @admin.display(description=gettext_lazy("message"))
    def message_preview(self, run: TenderRun) -> str:
        text = getattr(run, "message_start", None)
        if not text:
            return ""
        if len(text) > MESSAGE_PREVIEW_CHARS:
            return format_html('<span title="{}">{}…</span>', text, text[:MESSAGE_PREVIEW_CHARS])
        return text

    # -- the read-only detail page

    @admin.display(description=gettext_lazy("message"))
    def message_full(self, run: TenderRun) -> str:
        return format_html('<pre class="run-text">{}</pre>', run.message or "")

    @admin.display(description=gettext_lazy("error"))
    def error_full(self, run: TenderRun) -> str:
        return format_html('<pre class="run-text">{}</pre>', run.error or "")

    @admin.display(description=gettext_lazy("meta"))
    def meta_pretty(self, run: TenderRun) -> str:
        return pretty_json(run.meta_json)

    @admin.display(description=gettext_lazy("result"))
    def result_pretty(self, run: TenderRun) -> str:
        return pretty_json(run.result_json)

    @admin.display(description=gettext_lazy("audit history"))
    def audit_history(self, run: TenderRun) -> str:
        records = (
            FailedRunRecord.objects.filter(run_id=run.pk)
            .select_related("action")
            .order_by("-action__started_at")[:50]
        )
        if not records:
            return _("No maintenance has changed this run.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    short_time(r.action.started_at),
                    r.action.get_kind_display(),
                    r.action.username or r.action.get_actor_display(),
                    r.previous_status,
                    truncate(r.previous_message, 200),
                    truncate(r.previous_error, 200),
                )
                for r in records
            ),
        )
        return format_html(
            '<table class="run-audit"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("when"),
            _("action"),
            _("by"),
            _("previous status"),
            _("previous message"),
            _("previous error"),
            rows,
        )
