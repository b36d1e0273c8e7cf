"""The runs admin: a read-only list built for tens of millions of rows, and a detail page
(run_detail); the action and the extra pages are mixins too."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q, QuerySet
from django.db.models.functions import Left, Now
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.actions import MarkFailedMixin
from runs.admin.display import (
    impossible_start,
    progress_bar,
    short_time,
    span_between,
    truncate,
)
from runs.admin.export import MAX_EXPORT_ROWS, ExportMixin
from runs.admin.filters import (
    ErrorFilter,
    KindFilter,
    ProjectFilter,
    StartedFilter,
    StatusFilter,
    StuckFilter,
    within_text_search_window,
)
from runs.admin.links import change_page_url, runs_list_url
from runs.admin.pagination import CountedChangeList, EstimatedCountPaginator
from runs.admin.readonly import ReadOnlyAdmin
from runs.admin.run_detail import RunDetailMixin
from runs.admin.tenderops_filters import ActionFilter, AuditFilter, LivenessFilter
from runs.admin.views import MaintenanceViewsMixin
from runs.durations import duration, duration_formats
from runs.infinite_timestamps import is_infinite
from runs.limits import EARLIEST_START
from runs.maintenance import db_now
from runs.maintenance.liveness import stuck_from
from runs.maintenance.selection import stuck_among
from runs.models import MaintenanceAction, RunObservation, TenderRun
from runs.shown_text import labelled, visible
from runs.vocabulary import ACTIVE_STATUSES, RunStatus

MESSAGE_PREVIEW_CHARS = 80
RUN_ID_MAX_CHARS = 200  # the backend's ids are 35; an odd row's may be anything
# A kind longer than any the backend knows (extract_project_info) is cut short in the list.
KIND_SHOWN_CHARS = 20
# The cause of a failure: the first line of its error, at most this long.
CAUSE_CHARS = 120


def first_line(text: str | None, limit: int) -> str:
    line = (text or "").strip().split("\n", 1)[0].strip()
    return truncate(line, limit)


@admin.register(TenderRun)
class TenderRunAdmin(
    RunDetailMixin, MarkFailedMixin, MaintenanceViewsMixin, ExportMixin, ReadOnlyAdmin
):
    # The status next to the id: on a phone the columns after the first few scroll away.
    list_display = [
        "run_id",
        "status_badge",
        "project_link",
        "kind_display",
        "progress_bar",
        "elapsed",
        "last_sign_of_life",
        "started",
        "finished",
        "message_preview",
    ]
    list_display_links = ["run_id"]
    list_filter = [
        StatusFilter,
        KindFilter,
        StuckFilter,
        LivenessFilter,
        StartedFilter,
        ProjectFilter,
        ErrorFilter,
        AuditFilter,
        ActionFilter,
    ]
    search_fields = ["=id"]
    search_help_text = gettext_lazy(
        "A run id (tr_…) or project id (tp_…) matches exactly; other text searches project "
        "names, messages and errors of runs started in the last 30 days (or the chosen range)."
    )
    # Only by start, the order of an index: sorting by status, project or finish sorted the
    # whole table (3.3 to 4.1 s a page at 3 M runs).
    ordering = ["-started_at"]
    list_per_page = 50
    empty_value_display = "–"
    list_max_show_all = 200
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["mark_failed"]
    change_list_template = "admin/runs/tenderrun/change_list.html"
    change_form_template = "admin/runs/tenderrun/change_form.html"
    fields = [
        "run_id_full",
        "project_detail",
        "run_type_full",
        "kind_full",
        "status_badge",
        "progress_bar",
        "model_full",
        "started",
        "finished_in_full",
        "elapsed",
        "observed",
        "message_full",
        "error_full",
        "meta_pretty",
        "result_pretty",
        "platform_job_full",
        "audit_history",
    ]
    readonly_fields = fields

    # -- the list

    def changelist_view(self, request, extra_context=None):
        # The live counter (admin.js) writes durations with these, the server's own words.
        extra_context = {
            **(extra_context or {}),
            "duration_formats": duration_formats(),
            "export_maximum": f"{MAX_EXPORT_ROWS:,}",
        }
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", None) or {}
        if "cl" in changelist:  # the page's runs, before they are rendered: which are stuck
            page = list(changelist["cl"].result_list)
            stuck = stuck_among([run.pk for run in page if run.status in ACTIVE_STATUSES])
            for run in page:
                run.is_stuck = run.pk in stuck
            # The live counter (admin.js) counts on from the database's clock, not the browser's,
            # also for rows a live refresh brings to a page that opened empty.
            changelist["listed_at"] = page[0].listed_at if page else db_now()
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_mark_failed": self.has_mark_failed_permission(request),
            "active_statuses": list(ACTIVE_STATUSES),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fields(self, request, obj=None) -> list[str]:
        # The audit history says who failed the run and what it overwrote: the audit's to show.
        audit = self.admin_site.get_model_admin(MaintenanceAction)
        if audit.has_view_permission(request):
            return list(self.fields)
        return [name for name in self.fields if name != "audit_history"]

    def get_changelist(self, request, **kwargs):
        return CountedChangeList

    @property
    def media(self):
        # The project filter's search box is the admin's own autocomplete (select2).
        project = TenderRun._meta.get_field("project")
        return super().media + AutocompleteSelect(project, self.admin_site).media

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
            .annotate(
                message_start=Left("message", MESSAGE_PREVIEW_CHARS + 1),
                error_start=Left("error", CAUSE_CHARS * 2),
            )
            .with_last_sign_of_life()
            # The database's clock as it read the rows: durations are the monitor's, whatever
            # this server's or the browser's clock says.
            .annotate(listed_at=Now())
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # One id, one index: "run id or project id" in one filter was estimated at a
        # project's worth of runs and joined by hashing every project (24 ms at 50,000).
        if term.startswith("tr_"):
            return queryset.filter(pk=term), False
        if term.startswith("tp_"):
            return queryset.filter(project_id=term), False
        queryset = within_text_search_window(request, queryset)
        matches = (
            Q(project__name__icontains=term) | Q(message__icontains=term) | Q(error__icontains=term)
        )
        return queryset.filter(matches), False

    @admin.display(description=gettext_lazy("run"))
    def run_id(self, run: TenderRun) -> str:
        """The id's first characters shown (enough to tell runs apart on a page), so that the
        list fits 1440 pixels; the whole id is in the page (cut by CSS, not here), so that
        copying it, or double-clicking it, gives what the search box finds."""
        shown = truncate(run.pk, RUN_ID_MAX_CHARS)
        return format_html(
            '<span class="run-id" title="{}">{}</span>', visible(run.pk, one_line=True), shown
        )

    @admin.display(description=gettext_lazy("project"))
    def project_link(self, run: TenderRun) -> str:
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            runs_list_url(project=run.project_id),
            visible(run.project_id, one_line=True),
            truncate(run.project.name, 30) or truncate(run.project_id, 30),
        )

    @admin.display(description=gettext_lazy("project"))
    def project_detail(self, run: TenderRun) -> str:
        name = truncate(run.project.name, 80) or truncate(run.project_id, 80)
        page = change_page_url("tenderproject", run.project_id)
        return format_html(
            '{} <code>{}</code> · <a href="{}" id="run-project-runs">{}</a>',
            format_html('<a href="{}" id="run-project-page">{}</a>', page, name) if page else name,
            visible(run.project_id, one_line=True),
            runs_list_url(project=run.project_id),
            _("all runs of this project"),
        )

    @admin.display(description=gettext_lazy("kind"))
    def kind_display(self, run: TenderRun) -> str:
        kind = run.display_kind
        # A narrow column wraps extract_project_info at its underscores, not inside a word.
        words = truncate(kind, KIND_SHOWN_CHARS).split("_")
        shown = format_html_join(mark_safe("_<wbr>"), "{}", ((word,) for word in words))
        if len(kind) <= KIND_SHOWN_CHARS:  # every kind the backend knows
            return shown
        return format_html('<span title="{}">{}</span>', visible(kind, one_line=True), shown)

    @admin.display(description=gettext_lazy("status"))
    def status_badge(self, run: TenderRun) -> str:
        if run.status in RunStatus.values:
            return format_html(
                '<span class="run-status run-status-{}">{}</span>',
                run.status,
                RunStatus.label_of(run.status),
            )
        return format_html(
            '<span class="run-status run-status-unknown" title="{}">{}</span>',
            _("unknown status, never touched by tenderops"),
            truncate(RunStatus.label_of(run.status), 22),
        )

    @admin.display(description=gettext_lazy("progress"))
    def progress_bar(self, run: TenderRun) -> str:
        return progress_bar(run.progress)

    # A duration under "last sign of life" read as a time to operators: "silent for" it is.
    @admin.display(description=gettext_lazy("silent for"))
    def last_sign_of_life(self, run: TenderRun) -> str:
        """How long ago an active run last showed a sign of life (its start, or the last
        change tenderops observed in its status, progress or message); that moment is its
        title."""
        moment = getattr(run, "last_sign_of_life", None)
        if run.status not in ACTIVE_STATUSES or moment is None or is_infinite(moment):
            return "–"
        if moment < EARLIEST_START:
            return impossible_start()
        silent = format_html(
            '<span class="run-live" data-started="{}" title="{}">{}</span>',
            moment.isoformat(),
            labelled(_("last sign of life"), short_time(moment)),
            duration(run.listed_at - moment),
        )
        if not getattr(run, "is_stuck", False):
            return silent
        return format_html(
            '{}<br><span class="run-stuck" title="{}">{}</span>',
            silent,
            _(
                "Silent past its kind's timeout, running past the maximum runtime, or pending "
                "past TENDEROPS_FAIL_PENDING_AFTER_MINUTES: the monitor fails it at its next "
                "tick (in report mode: records it)."
            ),
            _("stuck now"),
        )

    @admin.display(description=gettext_lazy("observed by tenderops"))
    def observed(self, run: TenderRun) -> str:
        seen = RunObservation.objects.filter(run_id=run.pk).first()
        if seen is None and run.status in ACTIVE_STATUSES:
            text = _("Not observed (tenderops observes pending and running runs).")
        elif seen is None:  # observed while it ran, if it ran in tenderops' time; forgotten since
            text = _("Not observed now: tenderops observes pending and running runs only.")
        else:
            facts = (
                (_("first seen"), short_time(seen.first_seen_at)),
                (_("last change seen"), short_time(seen.last_change_at)),
                (_("changes seen"), seen.changes),
                (_("running since"), short_time(seen.running_since)),
            )
            text = " · ".join(labelled(label, value) for label, value in facts)
        due = stuck_from(run.pk)
        if due is not None and due <= db_now():  # the monitor's clock, not this server's
            stuck = labelled(_("stuck since"), short_time(due))
            return format_html('{} · <strong class="run-stuck">{}</strong>', text, stuck)
        if due is not None:
            text += " · " + labelled(_("stuck from, if nothing changes"), short_time(due))
        return text

    @admin.display(description=gettext_lazy("running / elapsed"))
    def elapsed(self, run: TenderRun) -> str:
        if run.finished_at is not None:
            return span_between(run.started_at, run.finished_at)
        started = run.started_at
        if run.status not in ACTIVE_STATUSES or started is None or is_infinite(started):
            return "–"
        if started < EARLIEST_START:
            return impossible_start()
        return format_html(
            '<span class="run-live" data-started="{}">{}</span>',
            started.isoformat(),
            duration(run.listed_at - started),
        )

    @admin.display(description=gettext_lazy("started at"), ordering="started_at")
    def started(self, run: TenderRun) -> str:
        return short_time(run.started_at)

    @admin.display(description=gettext_lazy("finished at"))
    def finished(self, run: TenderRun) -> str:
        """The finish time without what it shares with the start: its clock time on the
        start's day, its month and day in the start's year (the whole time is its title),
        so the list fits 1440 pixels."""
        full, start = short_time(run.finished_at), short_time(run.started_at)
        if run.finished_at is None or len(full) != len(start) or full[:4] != start[:4]:
            return full
        return format_html(
            '<span title="{}">{}</span>', full, full[11 if full[:10] == start[:10] else 5 :]
        )

    @admin.display(description=gettext_lazy("finished at"))
    def finished_in_full(self, run: TenderRun) -> str:
        """The run's page has the room the list lacks: the whole time."""
        return short_time(run.finished_at)

    @admin.display(description=gettext_lazy("message / cause"))
    def message_preview(self, run: TenderRun) -> str:
        """The message, and for a run with an error the error's first line: the cause behind
        a generic message such as 任务失败."""
        text = visible(getattr(run, "message_start", None) or "")
        if len(text) > MESSAGE_PREVIEW_CHARS:
            message = format_html('<span title="{}">{}…</span>', text, text[:MESSAGE_PREVIEW_CHARS])
        else:
            message = text
        cause = first_line(getattr(run, "error_start", None), CAUSE_CHARS)
        if cause and cause != text.strip():
            return format_html(
                '{}<span class="run-cause" title="{}">{}</span>', message, _("error"), cause
            )
        return message or "–"
