"""The runs list's filters: status, kind, stuck, signs of life, started (presets and a range),
project, and the runs of one maintenance action (what an alert links to)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.display import truncate
from runs.maintenance import (
    STATS_WINDOWS,
    StuckPolicy,
    db_now,
    late_finishes,
    over_max_runtime,
    silent_runs,
    waiting_runs,
)
from runs.models import FailedRunRecord, TenderProject, TenderRun
from runs.vocabulary import KNOWN_KINDS, KNOWN_RUN_TYPES, RunStatus


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
        stuck = TenderRun.objects.stuck(StuckPolicy.configured()).values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=stuck)
        return queryset.exclude(pk__in=stuck)


class StartedFilter(admin.SimpleListFilter):
    """Presets (today, and the stats page's windows: 24 h, 7 d, 30 d) and a custom range:
    ``started_from`` / ``started_to``."""

    title = gettext_lazy("started")
    parameter_name = "started"
    template = "admin/runs/tenderrun/started_filter.html"
    presets = STATS_WINDOWS
    preset_labels = {
        "24h": gettext_lazy("Last 24 hours"),
        "7d": gettext_lazy("Last 7 days"),
        "30d": gettext_lazy("Last 30 days"),
    }

    def __init__(self, request, params, model, model_admin):
        self.started_from = params.pop("started_from", [""])[-1]
        self.started_to = params.pop("started_to", [""])[-1]
        super().__init__(request, params, model, model_admin)

    def expected_parameters(self):
        return [self.parameter_name, "started_from", "started_to"]

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        windows = [(name, self.preset_labels.get(name, name)) for name in self.presets]
        return [("today", _("Today")), *windows, ("impossible", _("Impossible start time"))]

    def queryset(self, request, queryset):
        if self.value() == "impossible":
            queryset = queryset.impossible_start()
        elif self.value() == "today":
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


def _parse_day(raw: str) -> date | None:
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
        return [(pk, truncate(name, 40)) for pk, name in projects]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(project_id=self.value())
        return queryset


class LivenessFilter(admin.SimpleListFilter):
    """Signs of life (runs.maintenance.liveness): silent past the timeout, waiting, over the
    maximum runtime, or failed by tenderops and then finished by their worker."""

    title = gettext_lazy("signs of life")
    parameter_name = "liveness"

    def lookups(self, request, model_admin):
        return [
            ("silent", _("Silent")),
            ("waiting", _("Waiting")),
            ("over_max", _("Over max runtime")),
            ("late", _("Failed by tenderops, then finished")),
        ]

    def queryset(self, request, queryset):
        chosen = {
            "silent": silent_runs,
            "waiting": waiting_runs,
            "over_max": over_max_runtime,
        }.get(self.value())
        if chosen is not None:
            return queryset.filter(pk__in=chosen().values("pk"))
        if self.value() == "late":
            return queryset.filter(
                status=RunStatus.SUCCESS, pk__in=late_finishes().values("run_id")
            )
        return queryset


class ActionFilter(admin.SimpleListFilter):
    """``?action=ID``: the runs one maintenance action failed (the monitor's alert links
    here). Shown only while chosen."""

    title = gettext_lazy("maintenance action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"#{value}")] if value and value.isdigit() else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit() or len(value) > 18:
            return queryset.none()
        runs = FailedRunRecord.objects.filter(action_id=int(value)).values("run_id")
        return queryset.filter(pk__in=runs)
