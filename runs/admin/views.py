"""The runs admin's own pages: the stuck-run cleanup (preview, then fail) and the stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from math import ceil
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from runs.admin import charts
from runs.admin.actions import (
    BROKEN_PROMISE,
    CLEANUP,
    MAX_CONFIRMED_RUNS,
    promise_for,
    promised,
)
from runs.admin.display import short_time
from runs.admin.filters import (
    FINISHED,
    OTHER_STATUS,
    StartedFilter,
    error_parameter,
    kind_parameter,
    status_parameter,
)
from runs.admin.links import runs_list_url
from runs.durations import duration
from runs.maintenance import RunStats, db_now, fail_stuck_runs
from runs.maintenance.liveness import liveness_by_kind
from runs.maintenance.outcomes import CleanupResult, StuckRun
from runs.maintenance.selection import clean_up_promised, gone_of_the_rest, promise_of_listed
from runs.maintenance.stats import (
    DURATION_SAMPLE,
    PRUNED_KIND,
    failed_since,
    with_live_cards,
)
from runs.maintenance.stats_snapshot import read_stats_snapshot, refresh_stats_snapshot_now
from runs.models import Actor, TenderProject
from runs.shown_text import labelled
from runs.vocabulary import ACTIVE, KNOWN_KINDS, FailReason, RunStatus, StuckRule

# The cleanup page lists at most this many of the stuck runs it fails.
CLEANUP_ROWS_SHOWN = 200


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
            promise = promised(request.POST.get("promise", ""), CLEANUP)
            if promise is not None:
                result = clean_up_promised(
                    promise, actor=Actor.USER, username=request.user.get_username()
                )
                self._say_cleaned(request, result, sorted(promise.starts))
                return HttpResponseRedirect(changelist)
            self.message_user(
                request,
                BROKEN_PROMISE,
                messages.WARNING,
            )
        listed_at = db_now()
        preview = fail_stuck_runs(actor=Actor.USER, dry_run=True)
        listed = preview.stuck_runs[:MAX_CONFIRMED_RUNS]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Clean up stuck runs"),
            "opts": self.model._meta,
            "preview": preview,
            "policy": preview.policy,
            "per_kind": ", ".join(
                f"{kind} {minutes}" for kind, minutes in preview.policy.per_kind_minutes.items()
            ),
            "promise": promise_for(promise_of_listed(listed, listed_at), CLEANUP),
            "listed_count": len(listed),
            "rows": cleanup_rows(preview.stuck_runs[:CLEANUP_ROWS_SHOWN]),
            "stuck_list_url": runs_list_url(stuck="yes"),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/runs/tenderrun/cleanup_confirmation.html", context)

    def _say_cleaned(
        self, request: HttpRequest, result: CleanupResult, listed_ids: list[str]
    ) -> None:
        """Fixed what the page listed, or say how much of it was no longer stuck (the monitor
        or a worker got there first) and how much was deleted meanwhile: "no stuck runs found"
        would deny what the page showed."""
        listed = len(listed_ids)
        gone = gone_of_the_rest(listed_ids, result)
        self._say_gone(request, gone)
        left_alone = listed - result.fixed_count - gone
        if not left_alone or not result.complete:
            self.message_user(
                request, self._with_audit_link(result.message, result), messages.SUCCESS
            )
            return
        counts = {"fixed": result.fixed_count, "listed": listed, "left": left_alone}
        fixed = ngettext(
            "Fixed %(fixed)d of the %(listed)d listed run",
            "Fixed %(fixed)d of the %(listed)d listed runs",
            listed,
        )
        left = ngettext(
            "%(left)d was no longer stuck (finished, active again or failed meanwhile) and was "
            "left as it is.",
            "%(left)d were no longer stuck (finished, active again or failed meanwhile) and were "
            "left as they are.",
            left_alone,
        )
        # One sentence of two counted parts: the translation joins them as its language does.
        message = _("%(fixed)s; %(left)s") % {"fixed": fixed % counts, "left": left % counts}
        level = messages.SUCCESS if result.fixed_count else messages.WARNING
        self.message_user(request, self._with_audit_link(message, result), level)

    @staticmethod
    def _with_audit_link(message: str, result: CleanupResult) -> str:
        """The message, and where the audit log keeps what the cleanup overwrote."""
        if result.action_id is None:
            return message
        url = reverse("admin:runs_maintenanceaction_change", args=[result.action_id])
        return format_html('{} <a href="{}">{}</a>', message, url, _("Open its audit entry."))

    def stats_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":  # staff's "refresh now"
            wait = refresh_stats_snapshot_now()
            if wait is not None:
                seconds = {"seconds": ceil(wait.total_seconds())}
                message = _(
                    "These figures were refreshed moments ago, and a refresh reads the whole "
                    "table: the next is possible in %(seconds)d s."
                )
                self.message_user(request, message % seconds, messages.INFO)
            return HttpResponseRedirect(request.path)
        # The snapshot, never a computation per view (runs.maintenance.stats_snapshot).
        stats, as_of, stale = read_stats_snapshot()
        stats = with_live_cards(stats)
        liveness, other_liveness_kinds = liveness_rows()
        context = {
            "as_of": as_of,
            "stale": stale,
            "failed_since": failed_since(as_of),
            **self.admin_site.each_context(request),
            "title": _("Tender run statistics"),
            "opts": self.model._meta,
            "stats": stats,
            **stats_context(stats),
            "liveness": liveness,
            "other_liveness_kinds": other_liveness_kinds,
            "silence_rule": settings.TENDEROPS_STUCK_RULE == StuckRule.SILENCE,
            "max_run_minutes": settings.TENDEROPS_MAX_RUN_MINUTES,
            "changelist_url": reverse("admin:runs_tenderrun_changelist"),
        }
        return TemplateResponse(request, "admin/runs/tenderrun/stats.html", context)


def cleanup_rows(runs: list[StuckRun]) -> list[tuple[StuckRun, str, str]]:
    """Each stuck run shown with its project's name (the run knows its id only) and why it
    is stuck, in words."""
    names = dict(
        TenderProject.objects.filter(pk__in={run.project_id for run in runs}).values_list(
            "pk", "name"
        )
    )
    return [
        (run, names.get(run.project_id) or run.project_id, FailReason.label_of(run.reason))
        for run in runs
    ]


def liveness_rows() -> tuple[list[dict[str, Any]], int]:
    """Signs of life per kind, read live: they concern the active runs and the recent audit
    only, both small however large the table (not part of the snapshot). The kinds with the
    most silent, waiting and late runs, MAX_SHOWN_KINDS at most; and how many are left out."""
    by_kind = liveness_by_kind()

    def weight(kind: str) -> int:
        entry = by_kind[kind]
        return entry.silent + entry.waiting + entry.late.get("30d", 0)

    shown = most_runs(list(by_kind), weight)
    return [
        {
            "kind": kind,
            "silent": entry.silent,
            "silent_url": runs_list_url(liveness="silent", kind=kind_parameter(kind)),
            "waiting": entry.waiting,
            "waiting_url": runs_list_url(liveness="waiting", kind=kind_parameter(kind)),
            "late_24h": entry.late.get("24h", 0),
            "late_7d": entry.late.get("7d", 0),
            "late_30d": entry.late.get("30d", 0),
        }
        for kind, entry in ((kind, by_kind[kind]) for kind in shown)
    ], len(by_kind) - len(shown)


# Kinds a table or chart of the stats page shows at most, those with the most runs: the
# backend may write any kind, and a table of each of 40,000 kinds made a 44 MB page (the
# attacker); statuses likewise (20,000 of them: 691 MB). The rest are added up.
MAX_SHOWN_KINDS = 50
MAX_SHOWN_STATUSES = 20


def most_runs(kinds: list[str], runs: Callable[[str], int], cap: int | None = None) -> list[str]:
    """``kinds`` in their order, only the ``cap`` (MAX_SHOWN_KINDS) with the most ``runs``."""
    cap = MAX_SHOWN_KINDS if cap is None else cap
    if len(kinds) <= cap:
        return kinds
    top = set(sorted(kinds, key=lambda kind: -runs(kind))[:cap])
    return [kind for kind in kinds if kind in top]


def shown_statuses(stats: RunStats) -> list[str]:
    """Every known status, then the unknown ones with the most runs: MAX_SHOWN_STATUSES."""
    unknown = [status for status in stats.statuses if status not in RunStatus.values]
    room = max(MAX_SHOWN_STATUSES - (len(stats.statuses) - len(unknown)), 0)
    kept = set(most_runs(unknown, stats.status_total, room))
    return [s for s in stats.statuses if s in RunStatus.values or s in kept]


def other_statuses_row(stats: RunStats, statuses: list[str], kinds: list[str]) -> dict | None:
    """The statuses left out of the table, added up: a row without links (no filter lists
    exactly them)."""
    left_out = set(stats.statuses) - set(statuses)
    if not left_out:
        return None
    by_kind: Counter[str] = Counter()
    for (status, kind), count in stats.counts.items():
        if status in left_out:
            by_kind[kind] += count
    total = sum(by_kind.values())
    cells = [by_kind[kind] for kind in kinds]
    return {"count": len(left_out), "cells": cells, "other": total - sum(cells), "total": total}


def stats_context(stats: RunStats) -> dict[str, Any]:
    """The stats page's tables and charts, each count with the link to its runs."""
    health = stats.health
    kinds = most_runs(stats.kinds, stats.kind_total)
    statuses = shown_statuses(stats)
    runs_of = {d.kind: d.runs for d in stats.durations}
    timed = set(most_runs(list(runs_of), runs_of.__getitem__))
    durations = [d for d in stats.durations if d.kind in timed]
    failed_of: Counter[str] = Counter()
    for _day, counts in stats.failed_by_tenderops:
        failed_of.update(counts)
    failed_kinds = [
        *(k for k in KNOWN_KINDS if k in failed_of),
        *sorted(set(failed_of) - set(KNOWN_KINDS)),
    ]
    failed_kinds = most_runs(failed_kinds, failed_of.__getitem__)
    return {
        "count_rows": [
            {
                "status": status,
                "label": RunStatus.label_of(status),
                "url": runs_list_url(status=status_parameter(status)),
                "cells": [
                    (
                        stats.count(status, kind),
                        runs_list_url(status=status_parameter(status), kind=kind_parameter(kind)),
                    )
                    for kind in kinds
                ],
                "other": stats.status_total(status) - sum(stats.count(status, k) for k in kinds),
                "total": stats.status_total(status),
            }
            for status in statuses
        ],
        "other_statuses": other_statuses_row(stats, statuses, kinds),
        "shown_kinds": kinds,
        "other_kinds": len(stats.kinds) - len(kinds),
        "other_total": stats.total - sum(stats.kind_total(kind) for kind in kinds),
        "kind_totals": [
            (stats.kind_total(kind), runs_list_url(kind=kind_parameter(kind))) for kind in kinds
        ],
        "all_runs_url": runs_list_url(),
        "running_url": runs_list_url(status=RunStatus.RUNNING),
        "stuck_url": runs_list_url(stuck="yes"),
        "impossible_url": runs_list_url(status=ACTIVE, started="impossible"),
        "monitor": {
            "starting": stats.monitor_starting,
            "last_run": short_time(health.last_run_at) if health.last_run_at else None,
            "ago": duration(health.checked_at - health.last_run_at) if health.last_run_at else None,
        },
        "windows": [
            {
                "window": window,
                "heading": labelled(
                    StartedFilter.preset_labels.get(window.window, window.window),
                    "–" if window.failure_rate is None else f"{window.failure_rate * 100:.0f} %",
                ),
                "failed_url": runs_list_url(status=RunStatus.FAILED, started=window.window),
                "finished_url": runs_list_url(status=FINISHED, started=window.window),
                "errors": [
                    (
                        text,
                        count,
                        runs_list_url(
                            status=RunStatus.FAILED,
                            started=window.window,
                            error=error_parameter(text),
                        ),
                    )
                    for text, count in window.top_errors
                ],
            }
            for window in stats.failures
        ],
        "durations": [
            (d, runs_list_url(status=RunStatus.SUCCESS, kind=kind_parameter(d.kind), started="30d"))
            for d in durations
        ],
        "other_duration_kinds": len(stats.durations) - len(durations),
        # The durations' read is bounded: past it, they are the most recent runs' only.
        "duration_sample": DURATION_SAMPLE
        if sum(d.runs for d in stats.durations) >= DURATION_SAMPLE
        else None,
        "daily_chart": charts.runs_per_day(
            stats.daily,
            link=lambda day, status: runs_list_url(
                status=OTHER_STATUS if status is None else status_parameter(status),
                started_from=day,
                started_to=day,
            ),
        ),
        "legend_statuses": charts.status_legend(stats.daily),
        "failure_rate_chart": charts.failure_rate_line(
            stats.daily_failure_rates(),
            link=lambda day: runs_list_url(
                status=RunStatus.FAILED, started_from=day, started_to=day
            ),
        ),
        "failed_chart": charts.failed_by_kind(
            stats.failed_by_tenderops,
            failed_kinds,
            link=lambda day, kind: (
                None
                if kind in (PRUNED_KIND, None)
                else runs_list_url(audit="any", audit_day=day, kind=kind_parameter(kind))
            ),
        ),
        "failed_legend": [(charts.kind_class(failed_kinds)(kind), kind) for kind in failed_kinds],
        "failed_other_kinds": len(failed_of) - len(failed_kinds),
        "failed_total": sum(sum(c.values()) for _d, c in stats.failed_by_tenderops),
        "duration_chart": charts.duration_bars(durations),
    }
