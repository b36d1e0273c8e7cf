"""The bulk action "mark selected runs failed": a confirmation page with a reason, then the
audited routine. Works on a page's ticked rows and on "select all" across a filtered list."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from runs.maintenance import mark_runs_failed
from runs.models import Actor, TenderRun

CONFIRMATION_SAMPLE = 100
MAX_REASON_LENGTH = 2000


class MarkFailedForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=gettext_lazy("Written to each run's message and kept in the audit log."),
    )


class MarkFailedMixin:
    """For the runs' ModelAdmin: the action, its permission, and a 403 for those without it."""

    def has_mark_failed_permission(self, request) -> bool:
        return request.user.has_perm("runs.mark_failed_tenderrun")

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
                _("%(marked)s marked failed, %(skipped)s skipped (already finished or unknown).")
                % {
                    "marked": ngettext("%d run", "%d runs", len(result.failed))
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
