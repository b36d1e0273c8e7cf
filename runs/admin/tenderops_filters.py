"""The runs list's filters of what tenderops observed and did: signs of life, audit (runs
tenderops failed) and action (the runs of one maintenance action, where an alert links)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.filters import among, bad_date, is_action_id, known_choice, parse_day, refuse
from runs.admin.readonly import DroppedParameters
from runs.maintenance import (
    cleanup_batches,
    late_finished_run_ids,
    over_max_runtime,
    silent_runs,
    waiting_runs,
)
from runs.maintenance.telling import LINKED_CLEANUPS
from runs.models import FailedRunRecord
from runs.vocabulary import RunStatus


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
        if not known_choice(self):
            return queryset
        chosen = {
            "silent": silent_runs,
            "waiting": waiting_runs,
            "over_max": over_max_runtime,
        }.get(self.value())
        if chosen is not None:
            return among(queryset, chosen())
        if self.value() == "late":
            return queryset.filter(status=RunStatus.SUCCESS, pk__in=late_finished_run_ids())
        return queryset


class ActionFilter(admin.SimpleListFilter):
    """``?action=ID`` (or ``ID,ID,…``: a digest that also told a stopped tick's runs): the
    runs these maintenance actions failed, every batch of each (the monitor's alert links
    here). Shown only while chosen."""

    title = gettext_lazy("maintenance action")
    parameter_name = "action"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # Django skips a filter that offers nothing: "?action=abc" would list (and export)
        # every run.
        if self.value() and self.action_ids() is None:
            refuse(self)

    def action_ids(self) -> list[int] | None:
        parts = (self.value() or "").split(",")
        if len(parts) > LINKED_CLEANUPS or not all(is_action_id(part) for part in parts):
            return None
        return [int(part) for part in parts]

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, ", ".join(f"#{pk}" for pk in self.action_ids() or []))] if value else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        actions = [
            batch  # a fleet's cleanup: every batch's
            for first in self.action_ids() or []
            for batch in cleanup_batches(first).action_ids
        ]
        return queryset.filter(pk__in=FailedRunRecord.objects.run_ids_of(actions))


class AuditFilter(admin.SimpleListFilter):
    """Runs tenderops failed (the monitor, the CLI, the API, the admin), as its audit log
    records them: ``audit=any``, or one action's runs (``audit=<action id>``); with
    ``audit_day=YYYY-MM-DD``, only those failed on that day (in TENDEROPS_TIME_ZONE)."""

    title = gettext_lazy("tenderops action")
    parameter_name = "audit"

    def __init__(self, request, params, model, model_admin):
        raw_day = params.pop("audit_day", [""])[-1]
        self.audit_day = parse_day(raw_day)
        if raw_day and self.audit_day is None:
            raise DroppedParameters(["audit_day"], bad_date(raw_day))
        if raw_day and not params.get(self.parameter_name, [""])[-1]:
            raise DroppedParameters(
                ["audit_day"],
                _("Ignored audit_day: it narrows the runs tenderops failed (audit=any) to a day."),
            )
        super().__init__(request, params, model, model_admin)
        if self.value() and self.value() != "any" and not is_action_id(self.value()):
            refuse(self)

    def expected_parameters(self):
        return [self.parameter_name, "audit_day"]

    def lookups(self, request, model_admin):
        choices = [("any", _("Failed by tenderops"))]
        if self.value() and self.value() != "any":
            choices.append((self.value(), _("action #%(id)s") % {"id": self.value()[:20]}))
        if self.audit_day and self.value():
            choices = [
                (value, f"{label}, {self.audit_day.isoformat()}")
                if value == self.value()
                else (value, label)
                for value, label in choices
            ]
        return choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        records = FailedRunRecord.objects.of_failings()
        if self.value() != "any":
            records = records.filter(action_id__in=cleanup_batches(int(self.value())).action_ids)
        if self.audit_day:
            start = timezone.make_aware(datetime.combine(self.audit_day, time.min))
            records = records.filter(
                action__started_at__gte=start, action__started_at__lt=start + timedelta(days=1)
            )
        return queryset.filter(pk__in=records.values("run_id"))
