"""The projects' admin: a read-only page per project with its recent runs, and the search
behind the runs list's project filter (the admin's own autocomplete).

``tender_projects`` has tens of thousands of rows and belongs to the tender backend (no index
of tenderops' on it): an id (``tp_…``) is matched exactly through the primary key; other text
is matched in names (``icontains``, a scan of the small table, answered 20 at a time with a
capped count). Anyone who may view runs may view projects.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.display import short_time, truncate
from runs.admin.links import linked_code, runs_list_url
from runs.admin.pagination import CountedChangeList, EstimatedCountPaginator
from runs.admin.readonly import ReadOnlyAdmin
from runs.models import TenderProject, TenderRun
from runs.vocabulary import RunStatus

RECENT_RUNS = 20


@admin.register(TenderProject)
class TenderProjectAdmin(ReadOnlyAdmin):
    # The backend's own project status is left out: its words are not tenderops' to translate.
    list_display = ["project_name", "project_id", "created", "runs_link"]
    search_fields = ["=id", "name"]
    search_help_text = gettext_lazy(
        "A project id (tp_…) matches exactly; other text searches names."
    )
    ordering = ["-created_at"]
    list_per_page = 50
    empty_value_display = "–"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "project_id",
        "project_name",
        "knowledge_base",
        "owner",
        "created",
        "updated",
        "recent_runs",
    ]
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return CountedChangeList  # "more than 10,000" names, not "10,001"

    def get_queryset(self, request):
        # The backend's JSON is never shown here; read, one nested thousands deep (or with
        # an integer of thousands of digits) broke the list, the page and the search.
        return super().get_queryset(request).defer("meta_json")

    def _may_view(self, request) -> bool:
        user = request.user
        return user.has_perm("runs.view_tenderproject") or user.has_perm("runs.view_tenderrun")

    def has_view_permission(self, request, obj=None) -> bool:
        return self._may_view(request)

    def has_module_permission(self, request) -> bool:
        return self._may_view(request)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("tp_"):
            return queryset.filter(pk=term), False
        return queryset.filter(name__icontains=term), False

    @admin.display(description=gettext_lazy("name"), ordering="name")
    def project_name(self, project: TenderProject) -> str:
        return truncate(project.name, 200) or "–"

    @admin.display(description=gettext_lazy("project id"))
    def project_id(self, project: TenderProject) -> str:
        return truncate(project.pk, 200) or '""'

    @admin.display(description=gettext_lazy("knowledge base id"))
    def knowledge_base(self, project: TenderProject) -> str:
        return truncate(project.kb_id, 200) or "–"

    @admin.display(description=gettext_lazy("owner id"))
    def owner(self, project: TenderProject) -> str:
        return truncate(project.owner_id, 200) or "–"

    @admin.display(description=gettext_lazy("created at"), ordering="created_at")
    def created(self, project: TenderProject) -> str:
        return short_time(project.created_at)

    @admin.display(description=gettext_lazy("updated at"))
    def updated(self, project: TenderProject) -> str:
        return short_time(project.updated_at)

    @admin.display(description=gettext_lazy("tender runs"))
    def runs_link(self, project: TenderProject) -> str:
        link = _("show its runs")
        return format_html('<a href="{}">{}</a>', runs_list_url(project=project.pk), link)

    @admin.display(description=gettext_lazy("recent runs"))
    def recent_runs(self, project: TenderProject) -> str:
        runs = list(
            TenderRun.objects.filter(project=project)
            .only("id", "run_type", "kind", "status", "started_at", "finished_at")
            .order_by("-started_at")[:RECENT_RUNS]
        )
        link = format_html(
            '<p><a href="{}" id="project-runs-link">{}</a></p>',
            runs_list_url(project=project.pk),
            _("All runs of this project"),
        )
        if not runs:
            return format_html("<p>{}</p>{}", _("No runs."), link)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    linked_code("tenderrun", run.pk, truncate(run.pk, 80)),
                    truncate(run.display_kind, 80) or "–",
                    truncate(RunStatus.label_of(run.status), 20),
                    short_time(run.started_at),
                    short_time(run.finished_at),
                )
                for run in runs
            ),
        )
        return format_html(
            '<table class="run-sample" id="project-runs"><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>{}",
            _("run"),
            _("kind"),
            _("status"),
            _("started at"),
            _("finished at"),
            rows,
            link,
        )
