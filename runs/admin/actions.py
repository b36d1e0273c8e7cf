"""The bulk action "mark selected runs failed": a confirmation page with a reason, then the
audited routine. Works on a page's ticked rows and on "select all" across a filtered list.

A confirmation is a promise: the page signs the runs it says it will fail, each with its
start, and confirming fails only those of them that the selection still holds, that are still
active in the life the page showed, and that nothing failed since (a page confirmed twice
does not fail a run a worker has started again).
If the selection has gained runs meanwhile (new runs matching "select all"), or the page is
too old, the operator gets a new confirmation page instead. At most MAX_CONFIRMED_RUNS runs
are failed from one page, as Oban Web and River UI cap their bulk actions.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from runs.admin.links import change_page_url, runs_list_url
from runs.limits import MAX_REASON_LENGTH
from runs.maintenance import mark_runs_failed
from runs.maintenance.outcomes import MarkFailedResult
from runs.maintenance.selection import (
    MAX_CONFIRMED_RUNS,
    Promise,
    active_ids,
    bounded_skips,
    impossible_starts_at_most,
    pending_not_waiting,
    promise_of,
    running_not_stuck,
    selection_counted,
)
from runs.models import Actor, TenderRun
from runs.shown_text import has_controls
from runs.vocabulary import ACTIVE

# A page with more runs than one confirmation may fail shows this many of them.
CONFIRMATION_SAMPLE = 100
PROMISE_MAX_AGE_SECONDS = 3600
# What a promise was made for: a confirmation page's signed list of runs is good for the
# action that page confirms only (the cleanup took "mark failed"'s for its own).
MARK_FAILED, CLEANUP = "mark-failed", "cleanup"


def promise_for(promise: Promise, purpose: str) -> str:
    runs = [
        [pk, None if start is None else start.isoformat()] for pk, start in promise.starts.items()
    ]
    payload = {"at": promise.made_at.isoformat(), "runs": sorted(runs)}
    return signing.dumps(payload, salt=f"runs.{purpose}.promise", compress=True)


BROKEN_PROMISE = gettext_lazy(
    "That confirmation page is no longer valid (expired or altered); please check the runs again."
)


def promised(token: str, purpose: str) -> Promise | None:
    """What a confirmation page promised for ``purpose``; None if it was altered, is too old,
    was made for another purpose or by a version of tenderops that promised differently."""
    salt = f"runs.{purpose}.promise"
    try:
        payload = signing.loads(token, salt=salt, max_age=PROMISE_MAX_AGE_SECONDS)
        starts = {
            str(pk): None if start is None else datetime.fromisoformat(start)
            for pk, start in payload["runs"]
        }
        return Promise(starts=starts, made_at=datetime.fromisoformat(payload["at"]))
    except (signing.BadSignature, TypeError, ValueError, KeyError):
        return None


def single_run_page(request: HttpRequest) -> str | None:
    """The detail page a one-run confirmation came from (its "Mark failed" button)."""
    ids = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
    if request.POST.get("from_detail") == "1" and len(ids) == 1:
        return change_page_url("tenderrun", ids[0])
    return None


class MarkFailedForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=gettext_lazy("Written to each run's message and kept in the audit log."),
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"]
        if has_controls(reason):
            # The backend's frontend shows a run's message as it is, to its users.
            raise forms.ValidationError(
                _(
                    "The reason must not contain control characters (escape, bidirectional "
                    "or invisible ones): it is shown to users as it is written."
                )
            )
        return reason


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
            promise = self._kept_promise(request, queryset)
            if promise is None:
                return self._confirmation(request, queryset, form)
            result = mark_runs_failed(
                queryset,
                promise=promise,
                actor=Actor.USER,
                username=request.user.get_username(),
                reason=form.cleaned_data["reason"],
            )
            self.message_user(
                request,
                _marked_message(result),
                messages.SUCCESS if result.failed else messages.WARNING,
            )
            self._say_gone(request, result.gone_count)
            back = single_run_page(request)
            return HttpResponseRedirect(back) if back else None
        if not form.is_bound:
            form = MarkFailedForm(initial={"reason": settings.TENDEROPS_MARK_FAILED_MESSAGE})
        return self._confirmation(request, queryset, form)

    def _say_gone(self, request: HttpRequest, gone: int) -> None:
        """Runs the page listed that are no longer in the table (the backend deletes a
        project's runs with it): neither failed nor skipped, and said so."""
        if gone:
            message = ngettext(
                "%(count)d run the page listed is no longer in the table (deleted meanwhile).",
                "%(count)d runs the page listed are no longer in the table (deleted meanwhile).",
                gone,
            )
            self.message_user(request, message % {"count": gone}, messages.WARNING)

    def _kept_promise(self, request, queryset) -> Promise | None:
        """The page's promise if confirming now keeps it; else None, with a message saying
        why the operator sees a new confirmation page."""
        promise = promised(request.POST.get("promise", ""), MARK_FAILED)
        if promise is None:
            notice = str(BROKEN_PROMISE)
        else:
            added = set(active_ids(queryset, MAX_CONFIRMED_RUNS)) - set(promise.starts)
            if not added:
                return promise
            notice = ngettext(
                "%(count)d more run matches the selection than the page showed; "
                "please check again.",
                "%(count)d more runs match the selection than the page showed; please check again.",
                len(added),
            ) % {"count": len(added)}
        self.message_user(request, notice, messages.WARNING)
        return None

    def _confirmation(self, request, queryset, form) -> HttpResponse | None:
        selected = queryset.order_by()
        to_fail = active_ids(selected, MAX_CONFIRMED_RUNS)
        if not to_fail:  # no confirmation page offering to fail nothing
            self.message_user(
                request,
                _("Nothing to mark failed: none of the selected runs is pending or running."),
                messages.WARNING,
            )
            back = single_run_page(request)
            return HttpResponseRedirect(back) if back else None
        too_many = len(to_fail) > MAX_CONFIRMED_RUNS
        fail_count = len(to_fail)
        # Counted to a bound: "select all" on a filter of millions must not count them all.
        total = fail_count if too_many else selection_counted(selected, fail_count)
        skip_count, skips_over_bound = bounded_skips(total - fail_count)
        # Every run the page promises is listed; a page that cannot be confirmed (too many)
        # shows a sample.
        shown = CONFIRMATION_SAMPLE if too_many else fail_count
        sample = list(
            self.get_queryset(request).filter(pk__in=to_fail).order_by("-started_at")[:shown]
        )
        young = set() if too_many else running_not_stuck(to_fail)
        queued = set() if too_many else pending_not_waiting(to_fail)
        for run in sample:
            run.not_stuck = run.pk in young or run.pk in queued
            run.silent_for = self.last_sign_of_life(run)  # as the runs list shows it
        context = {
            **self.admin_site.each_context(request),
            "title": _("Mark runs failed?"),
            "opts": self.model._meta,
            "form": form,
            "fail_count": fail_count,
            "too_many": too_many,
            "max_confirmed": MAX_CONFIRMED_RUNS,
            "promise": "" if too_many else promise_for(promise_of(to_fail), MARK_FAILED),
            "skip_count": skip_count,
            "skips_over_bound": skips_over_bound,
            "young_count": len(young),
            "queued_count": len(queued),
            "pending_alert_minutes": settings.TENDEROPS_PENDING_ALERT_MINUTES,
            "sample": sample,
            "sample_limit": shown,
            "select_across": request.POST.get("select_across", "0"),
            "selected_ids": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action_index": request.POST.get("index", "0"),
            "form_url": request.get_full_path(),
            "from_detail": single_run_page(request),
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
            "impossible_starts": impossible_starts_at_most(MAX_CONFIRMED_RUNS),
            "impossible_url": runs_list_url(status=ACTIVE, started="impossible"),
        }
        return super().changelist_view(request, extra_context)


def _marked_message(result: MarkFailedResult) -> str:
    """What a confirmed marking did; the reasons a run is skipped only when one was."""
    marked = ngettext("%d run", "%d runs", len(result.failed)) % len(result.failed)
    if not result.skipped_count and not result.skipped_more:
        return _("%(marked)s marked failed.") % {"marked": marked}
    skipped = (
        ngettext("more than %d run", "more than %d runs", result.skipped_count)
        if result.skipped_more
        else ngettext("%d run", "%d runs", result.skipped_count)
    ) % result.skipped_count
    return _(
        "%(marked)s marked failed, %(skipped)s skipped (finished, of unknown status, "
        "started again or failed since the page or just before it, or being written "
        "by a worker at that instant)."
    ) % {"marked": marked, "skipped": skipped}
