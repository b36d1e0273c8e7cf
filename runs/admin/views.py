"""The runs admin's own pages: the stuck-run cleanup (preview, then fail) and the stats."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from runs.admin import charts
from runs.admin.actions import MAX_CONFIRMED_RUNS, promise_for, promised_ids
from runs.maintenance import fail_stuck_runs
from runs.maintenance.stats_snapshot import read_stats_snapshot, refresh_stats_snapshot_now
from runs.models import Actor


class MaintenanceViewsMixin:
    """For the runs' ModelAdmin: ``cleanup/`` (needs the mark-failed permission, see
    ``MarkFailedMixin``) and ``stats/`` (needs the view permission)."""

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
        # admin_view checks is_staff only: the permission is checked here.
        if not self.has_mark_failed_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:runs_tenderrun_changelist")
        if request.method == "POST":
            # Only what the preview listed, and of that only what is still stuck now.
            listed = promised_ids(request.POST.get("promise", ""))
            if listed is not None:
                result = fail_stuck_runs(
                    actor=Actor.USER, username=request.user.get_username(), run_ids=sorted(listed)
                )
                self.message_user(request, result.message, messages.SUCCESS)
                return HttpResponseRedirect(changelist)
            self.message_user(
                request,
                _("That confirmation page had expired; please check the runs again."),
                messages.WARNING,
            )
        preview = fail_stuck_runs(actor=Actor.USER, dry_run=True)
        listed_ids = [run.id for run in preview.stuck_runs[:MAX_CONFIRMED_RUNS]]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Clean up stuck runs"),
            "opts": self.model._meta,
            "preview": preview,
            "policy": preview.policy,
            "promise": promise_for(listed_ids),
            "listed_count": len(listed_ids),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/runs/tenderrun/cleanup_confirmation.html", context)

    def stats_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":  # staff's "refresh now"
            refresh_stats_snapshot_now()
            return HttpResponseRedirect(request.path)
        # The snapshot, never a computation per view (runs.maintenance.stats_snapshot).
        stats, as_of, stale = read_stats_snapshot()
        context = {
            "as_of": as_of,
            "stale": stale,
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
