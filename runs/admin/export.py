"""CSV exports: the runs list as filtered, and the runs one audited action failed.

Both stream (StreamingHttpResponse over a server-side cursor, EXPORT_CHUNK rows at a time),
so memory stays flat however many rows, and both stop at MAX_EXPORT_ROWS: above it the
operator gets the list back with a message asking for a narrower filter, never a partial
file. The file is UTF-8 with a byte-order mark (Excel then opens Chinese text correctly),
times are written in TENDEROPS_TIME_ZONE (named in the column headers), text cells are
limited to Excel's 32,767 characters and never start like a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from itertools import islice
from typing import Any

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from runs.admin.display import percent, short_time, why_failed
from runs.admin.readonly import DroppedParameters
from runs.admin.site import time_zone_label
from runs.durations import without_joiners
from runs.infinite_timestamps import is_infinite
from runs.models import FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import RunStatus, run_kind

MAX_EXPORT_ROWS = 100_000
EXPORT_CHUNK = 2_000
ROWS_PER_WRITE = 200
# Excel's limit for one cell.
CELL_CHARS = 32_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer's file: hands each written line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def text_cell(value: str | None) -> str:
    """Text as a spreadsheet reads it, never as a formula (OWASP's CSV injection advice)."""
    text = (value or "")[:CELL_CHARS]
    return "'" + text if text.startswith(FORMULA_START) else text


def time_cell(moment: datetime | None, zone: tzinfo) -> str:
    """As the admin writes times (runs.admin.display.short_time), the zone looked up once."""
    if moment is None:
        return ""
    if is_infinite(moment):
        return short_time(moment)
    try:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    except OverflowError:
        return short_time(moment)


def seconds_between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None or is_infinite(start) or is_infinite(end) or end < start:
        return ""  # no duration rather than a negative one
    return str(int((end - start).total_seconds()))


def csv_response(header: Sequence[str], rows: Iterable[Sequence[Any]], name: str):
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(header)
        rows_left = iter(rows)
        while batch := list(islice(rows_left, ROWS_PER_WRITE)):
            yield "".join(writer.writerow(row) for row in batch)

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def too_many(queryset: QuerySet) -> bool:
    """Whether more than MAX_EXPORT_ROWS rows match: a read of that many ids at most."""
    return queryset.order_by().values("pk")[: MAX_EXPORT_ROWS + 1].count() > MAX_EXPORT_ROWS


def refuse(request: HttpRequest, back: str) -> HttpResponse:
    messages.error(
        request,
        _(
            "More than %(maximum)s runs match: narrow the filter (a date range, a status, a "
            "kind) to export at most %(maximum)s."
        )
        % {"maximum": f"{MAX_EXPORT_ROWS:,}"},
    )
    return HttpResponseRedirect(back)


def status_labels() -> dict[str | None, str]:
    """The statuses' words in the request's language, taken before the response streams."""
    return {
        **{status: RunStatus.label_of(status) for status in RunStatus.values},
        None: _("(no longer in the table)"),  # pruned, or deleted with its project
    }


def run_rows(queryset: QuerySet[TenderRun], labels: dict) -> Iterator[list[str]]:
    zone = timezone.get_current_timezone()
    rows = queryset.annotate(
        message_text=Left("message", CELL_CHARS), error_text=Left("error", CELL_CHARS)
    ).values_list(
        "id",
        "project_id",
        "project__name",
        "kind",
        "run_type",
        "status",
        "progress",
        "started_at",
        "finished_at",
        "message_text",
        "error_text",
    )
    for (
        pk,
        project_id,
        name,
        kind,
        run_type,
        status,
        progress,
        started,
        finished,
        msg,
        err,
    ) in rows.iterator(chunk_size=EXPORT_CHUNK):
        share = percent(progress)
        yield [
            text_cell(pk),
            text_cell(project_id),
            text_cell(name),
            text_cell(run_kind(kind, run_type)),
            labels.get(status, text_cell(status)),
            "" if share is None else str(share),
            time_cell(started, zone),
            time_cell(finished, zone),
            seconds_between(started, finished),
            text_cell(msg),
            text_cell(err),
        ]


def run_header() -> list[str]:
    zone = time_zone_label()
    return [
        _("run"),
        _("project id"),
        _("project"),
        _("kind"),
        _("status"),
        _("progress (%)"),
        _("started at (%(zone)s)") % {"zone": zone},
        _("finished at (%(zone)s)") % {"zone": zone},
        _("duration (seconds)"),
        _("message"),
        _("error"),
    ]


class ExportMixin:
    """For the runs' ModelAdmin: ``export/`` with the list's own query string."""

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="runs_tenderrun_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.urlencode()
        back = reverse("admin:runs_tenderrun_changelist") + (f"?{query}" if query else "")
        request.runs_export = True  # CountedChangeList: no count, no page; filters and ordering
        try:
            changelist = self.get_changelist_instance(request)
        except (IncorrectLookupParameters, DroppedParameters):
            # Exporting without what the list cannot read would export more than asked: back
            # to the list, which says what it drops.
            return HttpResponseRedirect(back)
        queryset = changelist.queryset
        if too_many(queryset):
            return refuse(request, back)
        rows = run_rows(queryset, status_labels())
        return csv_response(run_header(), rows, "tender-runs")


def audit_rows(action: MaintenanceAction, labels: dict) -> Iterator[list[str]]:
    run = TenderRun.objects.with_run_kind().filter(pk=OuterRef("run_id"))
    records = (
        FailedRunRecord.objects.filter(action=action)
        .annotate(
            kind=Subquery(run.values("run_kind")[:1]),
            status_now=Subquery(run.values("status")[:1]),
            project_id=Subquery(run.values("project_id")[:1]),
            message_text=Left("previous_message", CELL_CHARS),
            error_text=Left("previous_error", CELL_CHARS),
        )
        .order_by("pk")
        .values_list(
            "run_id",
            "project_id",
            "kind",
            "previous_status",
            "reason",
            "silent_minutes",
            "message_text",
            "error_text",
            "status_now",
        )
    )
    for run_id, project_id, kind, previous, reason, silent, msg, err, now in records.iterator(
        chunk_size=EXPORT_CHUNK
    ):
        yield [
            text_cell(run_id),
            text_cell(project_id),
            text_cell(kind),
            without_joiners(why_failed(reason, silent)),
            labels.get(previous, text_cell(previous)),
            text_cell(msg),
            text_cell(err),
            labels.get(now, text_cell(now)),
        ]


class AuditExportMixin:
    """For the audit log's ModelAdmin: ``<id>/export/``, the runs that action failed."""

    def get_urls(self):
        return [
            path(
                "<int:action_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="runs_maintenanceaction_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest, action_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        action = get_object_or_404(MaintenanceAction, pk=action_id)
        back = reverse("admin:runs_maintenanceaction_change", args=[action.pk])
        if too_many(FailedRunRecord.objects.filter(action=action)):
            return refuse(request, back)
        header = [
            _("run"),
            _("project id"),
            _("kind"),
            _("why"),
            _("previous status"),
            _("previous message"),
            _("previous error"),
            _("status now"),
        ]
        rows = audit_rows(action, status_labels())
        return csv_response(header, rows, f"tenderops-action-{action.pk}")
