"""The operators' admin for tender runs: a read-only list built for tens of millions of rows,
the audited "mark failed" action, the stuck-run cleanup button and the stats page.

Every change goes through runs.maintenance; this module only selects, confirms and shows.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from runs import charts
from runs.maintenance import (
    StuckPolicy,
    collect_stats,
    db_now,
    fail_stuck_runs,
    mark_runs_failed,
    stuck_runs_queryset,
)
from runs.models import (
    Actor,
    FailedRunRecord,
    MaintenanceAction,
    TenderProject,
    TenderRun,
)
from runs.vocabulary import ACTIVE_STATUSES, KNOWN_KINDS, KNOWN_RUN_TYPES, RunStatus

# Above this many rows an unfiltered list shows the planner's estimate, not an exact count.
ESTIMATE_ABOVE = 50_000
# A filtered list counts at most this many rows and then shows "10,000+".
COUNT_CAP = 10_000
MESSAGE_PREVIEW_CHARS = 80
CONFIRMATION_SAMPLE = 100
SEARCH_WINDOW = timedelta(days=30)
MAX_REASON_LENGTH = 2000


# --- counting without COUNT(*) over the whole table ----------------------------------------


class EstimatedCountPaginator(Paginator):
    """Exact counts where they are cheap, estimates or caps where they are not.

    Unfiltered: PostgreSQL's ``reltuples`` (maintained by autovacuum) once the table is
    large; filtered: counts at most ``COUNT_CAP + 1`` rows, so a page never scans millions.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = _estimated_rows(queryset.model._meta.db_table)
            if estimate is not None and estimate > ESTIMATE_ABOVE:
                self.count_is_estimate = True
                return estimate
        capped = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
        self.count_is_capped = capped > COUNT_CAP
        return capped

    count_is_estimate = False
    count_is_capped = False


def _estimated_rows(table: str) -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    # -1 until the first ANALYZE: then the caller counts exactly.
    return row[0] if row and row[0] >= 0 else None


class RunChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.count_is_estimate = self.paginator.count_is_estimate
        self.count_is_capped = self.paginator.count_is_capped


# --- filters ---------------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*RunStatus.choices, ("__other__", _("other (unknown)"))]

    def queryset(self, request, queryset):
        if self.value() == "__other__":
            return queryset.of_unknown_status()
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = gettext_lazy("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind, kind) for kind in (*KNOWN_KINDS, *KNOWN_RUN_TYPES)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.with_run_kind().filter(run_kind=self.value())
        return queryset


class StuckFilter(admin.SimpleListFilter):
    title = gettext_lazy("stuck")
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() not in {"yes", "no"}:
            return queryset
        stuck = stuck_runs_queryset(StuckPolicy.configured()).values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=stuck)
        return queryset.exclude(pk__in=stuck)


class StartedFilter(admin.SimpleListFilter):
    """Presets (today, 24 h, 7 d, 30 d) and a custom range: ``started_from`` / ``started_to``."""

    title = gettext_lazy("started")
    parameter_name = "started"
    template = "admin/runs/tenderrun/started_filter.html"
    presets = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}

    def __init__(self, request, params, model, model_admin):
        self.started_from = params.pop("started_from", [""])[-1]
        self.started_to = params.pop("started_to", [""])[-1]
        super().__init__(request, params, model, model_admin)

    def expected_parameters(self):
        return [self.parameter_name, "started_from", "started_to"]

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        return [
            ("today", _("Today")),
            ("24h", _("Last 24 hours")),
            ("7d", _("Last 7 days")),
            ("30d", _("Last 30 days")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "today":
            midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
            queryset = queryset.filter(started_at__gte=midnight)
        elif self.value() in self.presets:
            queryset = queryset.filter(started_at__gte=db_now() - self.presets[self.value()])
        return self._custom_range(request, queryset)

    def _custom_range(self, request, queryset):
        for raw, lookup, day_offset in (
            (self.started_from, "started_at__gte", 0),
            (self.started_to, "started_at__lt", 1),
        ):
            if not raw:
                continue
            day = _parse_day(raw)
            if day is None:
                messages.warning(
                    request, _("Ignored the date %(value)s: use YYYY-MM-DD.") % {"value": raw[:40]}
                )
                continue
            start = datetime.combine(day + timedelta(days=day_offset), time.min)
            queryset = queryset.filter(**{lookup: timezone.make_aware(start)})
        return queryset

    def choices(self, changelist):
        self.custom_range = self.custom_range_context(changelist)
        yield from super().choices(changelist)

    def custom_range_context(self, changelist) -> dict[str, Any]:
        keep = {
            key: value
            for key, value in changelist.get_filters_params().items()
            if key not in self.expected_parameters()
        }
        return {"started_from": self.started_from, "started_to": self.started_to, "keep": keep}


def _parse_day(raw: str):
    try:
        day = parse_date(raw.strip())
    except ValueError:
        return None
    if day is None or not 1900 <= day.year <= 9998:
        return None
    return day


class ProjectFilter(admin.SimpleListFilter):
    """Projects can number tens of thousands: offer the most recent few and the chosen one;
    every project name in the list links to its filter."""

    title = gettext_lazy("project")
    parameter_name = "project"
    recent = 8

    def lookups(self, request, model_admin):
        projects = list(
            TenderProject.objects.order_by("-created_at").values_list("pk", "name")[: self.recent]
        )
        if self.value() and self.value() not in {pk for pk, _name in projects}:
            chosen = TenderProject.objects.filter(pk=self.value()).values_list("pk", "name")
            projects = [*chosen, *projects] or [(self.value(), self.value())]
        return [(pk, _truncate(name, 40)) for pk, name in projects]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(project_id=self.value())
        return queryset


def _truncate(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- forms -----------------------------------------------------------------------------------


class MarkFailedForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=gettext_lazy("Written to each run's message and kept in the audit log."),
    )


# --- the run admin ---------------------------------------------------------------------------


# The runs list needs the width more than the sidebar of other apps.
admin.site.enable_nav_sidebar = False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs belong to the tender backend and the audit log to history: nobody edits either,
    superusers included; changes go through the routines only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TenderRun)
class TenderRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project_link",
        "kind_display",
        "status_badge",
        "progress_bar",
        "elapsed",
        "started",
        "finished",
        "message_preview",
    ]
    list_display_links = ["id"]
    list_filter = [StatusFilter, KindFilter, StuckFilter, StartedFilter, ProjectFilter]
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
        "started_at",
        "finished_at",
        "elapsed",
        "message_full",
        "error_full",
        "meta_pretty",
        "result_pretty",
        "platform_job_id",
        "audit_history",
    ]
    readonly_fields = fields

    # -- permissions: read-only (ReadOnlyAdmin), and a dedicated permission to fail runs

    def has_mark_failed_permission(self, request) -> bool:
        return request.user.has_perm("runs.mark_failed_tenderrun")

    # -- the list

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
            '<a href="{}?project={}" title="{}">{}</a>',
            url,
            run.project_id,
            run.project_id,
            _truncate(run.project.name, 30) or run.project_id,
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
            RunStatus.label_of(run.status) if known else _truncate(run.status, 20),
        )

    @admin.display(description=gettext_lazy("progress"))
    def progress_bar(self, run: TenderRun) -> str:
        if run.progress is None:
            return "–"
        share = min(max(run.progress, 0.0), 1.0)
        percent = round(share * 100)
        return format_html(
            '<span class="run-progress" title="{}%"><span style="width: {}%"></span></span> {}%',
            percent,
            percent,
            percent,
        )

    @admin.display(description=gettext_lazy("running / elapsed"))
    def elapsed(self, run: TenderRun) -> str:
        if run.finished_at is not None:
            return _duration(run.finished_at - run.started_at)
        if run.status not in ACTIVE_STATUSES:
            return "–"
        started = run.started_at
        return format_html(
            '<span class="run-live" data-started="{}">{}</span>',
            started.isoformat(),
            _duration(timezone.now() - started),
        )

    @admin.display(description=gettext_lazy("started at"), ordering="started_at")
    def started(self, run: TenderRun) -> str:
        return _short_time(run.started_at)

    @admin.display(description=gettext_lazy("finished at"), ordering="finished_at")
    def finished(self, run: TenderRun) -> str:
        return _short_time(run.finished_at)

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
        return _pretty_json(run.meta_json)

    @admin.display(description=gettext_lazy("result"))
    def result_pretty(self, run: TenderRun) -> str:
        return _pretty_json(run.result_json)

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
                    timezone.localtime(r.action.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                    r.action.get_kind_display(),
                    r.action.username or r.action.get_actor_display(),
                    r.previous_status,
                    _truncate(r.previous_message, 200),
                    _truncate(r.previous_error, 200),
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

    # -- "mark selected runs failed", with a confirmation page

    @admin.action(
        description=gettext_lazy("Mark selected runs failed"), permissions=["mark_failed"]
    )
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[TenderRun]):
        form = MarkFailedForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            result = mark_runs_failed(
                queryset,
                actor=Actor.USER,
                username=request.user.get_username(),
                reason=form.cleaned_data["reason"],
            )
            self.message_user(
                request,
                _("%(failed)s marked failed, %(skipped)s skipped (already finished or unknown).")
                % {
                    "failed": ngettext("%d run", "%d runs", len(result.failed))
                    % len(result.failed),
                    "skipped": ngettext("%d run", "%d runs", result.skipped_count)
                    % result.skipped_count,
                },
                messages.SUCCESS if result.failed else messages.WARNING,
            )
            return None
        if not form.is_bound:
            form = MarkFailedForm(initial={"reason": settings.TENDEROPS_STUCK_MESSAGE})
        return self._confirmation(request, queryset, form)

    def _confirmation(self, request, queryset, form) -> TemplateResponse:
        selected = queryset.order_by()
        to_fail = selected.active()
        fail_count = to_fail.count()
        total = selected.count()
        sample = list(
            self.get_queryset(request)
            .filter(pk__in=to_fail.values("pk"))
            .order_by("-started_at")[:CONFIRMATION_SAMPLE]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Mark runs failed?"),
            "opts": self.model._meta,
            "form": form,
            "fail_count": fail_count,
            "skip_count": total - fail_count,
            "sample": sample,
            "sample_limit": CONFIRMATION_SAMPLE,
            "select_across": request.POST.get("select_across", "0"),
            "selected_ids": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action_index": request.POST.get("index", "0"),
            "form_url": request.get_full_path(),
        }
        return TemplateResponse(
            request, "admin/runs/tenderrun/mark_failed_confirmation.html", context
        )

    def changelist_view(self, request, extra_context=None):
        # Django silently ignores an action the user may not run; say so with a 403 instead.
        if (
            request.method == "POST"
            and request.POST.get("action") == "mark_failed"
            and not self.has_mark_failed_permission(request)
        ):
            raise PermissionDenied
        extra_context = {
            **(extra_context or {}),
            "can_mark_failed": self.has_mark_failed_permission(request),
        }
        return super().changelist_view(request, extra_context)

    # -- the cleanup button and the stats page

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "cleanup/",
                self.admin_site.admin_view(self.cleanup_view),
                name="{}_{}_cleanup".format(*info),
            ),
            path(
                "stats/",
                self.admin_site.admin_view(self.stats_view),
                name="{}_{}_stats".format(*info),
            ),
            *super().get_urls(),
        ]

    def cleanup_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_mark_failed_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:runs_tenderrun_changelist")
        if request.method == "POST":
            result = fail_stuck_runs(actor=Actor.USER, username=request.user.get_username())
            self.message_user(request, result.message, messages.SUCCESS)
            return HttpResponseRedirect(changelist)
        preview = fail_stuck_runs(actor=Actor.USER, dry_run=True)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Clean up stuck runs"),
            "opts": self.model._meta,
            "preview": preview,
            "policy": preview.policy,
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/runs/tenderrun/cleanup_confirmation.html", context)

    def stats_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        stats = collect_stats()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Tender run statistics"),
            "opts": self.model._meta,
            "stats": stats,
            "count_rows": [
                (status, [stats.count(status, kind) for kind in stats.kinds])
                for status in stats.statuses
            ],
            "kind_totals": [
                sum(stats.count(s, kind) for s in stats.statuses) for kind in stats.kinds
            ],
            "daily_chart": charts.stacked_daily_bars(stats.daily),
            "legend_statuses": charts.STATUS_ORDER,
            "duration_chart": charts.duration_bars(stats.durations),
            "changelist_url": reverse("admin:runs_tenderrun_changelist"),
        }
        return TemplateResponse(request, "admin/runs/tenderrun/stats.html", context)


def _short_time(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 0:
        return _("not started yet")
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours >= 48:
        return _("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    if hours:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": seconds}


def _pretty_json(value: Any) -> str:
    if value is None:
        return "–"
    return format_html(
        '<pre class="run-json">{}</pre>', json.dumps(value, ensure_ascii=False, indent=2)
    )


class FailedRunRecordInline(admin.TabularInline):
    model = FailedRunRecord
    fields = ["run_id", "previous_status", "previous_message", "previous_error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(MaintenanceAction)
class MaintenanceActionAdmin(ReadOnlyAdmin):
    """The audit log: read-only for everyone, superusers included."""

    list_display = ["started_at", "kind", "actor", "username", "affected_count", "completed"]
    list_filter = ["kind", "actor", "completed"]
    search_fields = ["=username"]
    ordering = ["-started_at"]
    show_full_result_count = False
    readonly_fields = [
        "kind",
        "actor",
        "username",
        "started_at",
        "finished_at",
        "parameters",
        "reason",
        "affected_count",
        "completed",
    ]
    fields = readonly_fields
    inlines = [FailedRunRecordInline]
