"""The audit log: every maintenance action and what it overwrote, read-only for everyone.
An action that failed runs links to them in the runs list and exports them as CSV."""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from runs.admin.display import pretty_json, short_time, truncate
from runs.admin.export import AuditExportMixin
from runs.admin.links import runs_list_url
from runs.admin.readonly import ReadOnlyAdmin
from runs.maintenance import cleanup_batches
from runs.models import Actor, FailedRunRecord, MaintenanceAction
from runs.shown_text import visible


class FailedRunRecordInline(admin.TabularInline):
    """What the action overwrote, run by run: its template shows the first 200 records and
    builds no form (an action may have failed thousands of runs)."""

    model = FailedRunRecord
    fields = ["run_id", "previous_status", "previous_message", "previous_error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    template = "admin/runs/maintenanceaction/failed_runs_inline.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_text_starts().order_by("pk")


@admin.register(MaintenanceAction)
class MaintenanceActionAdmin(AuditExportMixin, ReadOnlyAdmin):
    """The audit log: read-only for everyone, superusers included."""

    list_display = [
        "started",
        "kind",
        "actor",
        "username",
        "reason_start",
        "affected_count",
        "completed",
    ]
    list_filter = ["kind", "actor", "completed"]
    search_fields = ["username", "reason"]  # searched by get_search_results
    search_help_text = gettext_lazy("A user name or a run id (exact), or words of the reason.")
    ordering = ["-started_at"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    empty_value_display = "–"
    readonly_fields = [
        "kind",
        "actor",
        "username",
        "started",
        "finished",
        "parameters_pretty",
        "reason_shown",
        "affected_count",
        "batches",
        "completed",
        "alerted",
    ]
    fields = readonly_fields
    inlines = [FailedRunRecordInline]
    change_form_template = "admin/runs/maintenanceaction/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        """The whole term: a user name or a run id exactly (the failings that overwrote the
        run, through the records' run id index), or words of the reason. Django's own search
        joined every record and compared ids without case: 2.4 s for 2 M records."""
        term = search_term.strip()
        if not term:
            return queryset, False
        by_run = FailedRunRecord.objects.filter(run_id=term).values("action_id")
        found = Q(username=term) | Q(reason__icontains=term) | Q(pk__in=by_run)
        return queryset.filter(found), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        action = self.get_object(request, object_id)
        extra_context = {**(extra_context or {})}
        if action is not None and action.kind in MaintenanceAction.FAILING_KINDS:
            extra_context["runs_url"] = runs_list_url(audit=action.pk)
        elif action is not None and action.kind == MaintenanceAction.Kind.WOULD_FAIL:
            # Report mode failed nothing: the runs it would have failed, whatever they are now.
            extra_context["runs_url"] = runs_list_url(action=action.pk)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=gettext_lazy("started at"), ordering="started_at")
    def started(self, action: MaintenanceAction) -> str:
        return short_time(action.started_at)

    @admin.display(description=gettext_lazy("finished at"))
    def finished(self, action: MaintenanceAction) -> str:
        return short_time(action.finished_at)

    @admin.display(description=gettext_lazy("reason"))
    def reason_shown(self, action: MaintenanceAction) -> str:
        return visible(action.reason) or "–"

    @admin.display(description=gettext_lazy("reason"))
    def reason_start(self, action: MaintenanceAction) -> str:
        return visible(truncate(action.reason, 60), one_line=True) or "–"

    @admin.display(description=gettext_lazy("cleanup in batches"))
    def batches(self, action: MaintenanceAction) -> str:
        """A fleet's cleanup writes an action per batch: where the others are."""
        first = action.parameters.get(MaintenanceAction.CONTINUES)
        if type(first) is int:  # as the cleanup writes it (not a bool, a float or text)
            url = reverse("admin:runs_maintenanceaction_change", args=[first])
            return format_html('{} <a href="{}">#{}</a>', _("Continues action"), url, first)
        batches = cleanup_batches(action.pk)
        later, total = batches.action_ids[1:], batches.failed_count
        if not later:
            return "–"
        return ngettext(
            "Continued in one more action (#%(first)d): %(total)d runs in all, listed together "
            "by its runs link.",
            "Continued in %(count)d more actions (#%(first)d to #%(last)d): %(total)d runs in "
            "all, listed together by its runs link.",
            len(later),
        ) % {"count": len(later), "first": later[0], "last": later[-1], "total": total}

    @admin.display(description=gettext_lazy("alert"))
    def alerted(self, action: MaintenanceAction) -> str:
        """Whether the monitor's failing is in an alert yet (a tick stopped before its digest
        leaves it for the next); other actions alert nobody."""
        if action.alert_pending:
            return _(
                "Not yet: a monitor tick tells it (once its kinds' alert cooldown has passed, "
                "if they were told lately)."
            )
        if action.actor != Actor.SCHEDULE:
            return "–"
        if action.kind == MaintenanceAction.Kind.FAIL_STUCK:
            return _(
                "Told in the monitor's alert digest (a kind told within the cooldown is counted "
                "there, not listed)."
            )
        if action.kind == MaintenanceAction.Kind.WOULD_FAIL:
            return _(
                "Told in the monitor's “stuck runs not failed” digest (unless its kinds were "
                "in cooldown)."
            )
        return "–"

    @admin.display(description=gettext_lazy("parameters"))
    def parameters_pretty(self, action: MaintenanceAction) -> str:
        return pretty_json(action.parameters)
