"""The runs list's filters of the backend's columns: status, kind, stuck, started (presets and
a range, in TENDEROPS_TIME_ZONE), project (searched by the admin's autocomplete) and error (a
top error's text, which a link opens); and what they share. Those of what tenderops observed
and did are in ``tenderops_filters``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, NoReturn

from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q, QuerySet
from django.forms.utils import flatatt
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.display import truncate
from runs.admin.readonly import DroppedParameters
from runs.maintenance import (
    STATS_WINDOWS,
    StuckPolicy,
    db_now,
)
from runs.maintenance.stats import ERROR_PREVIEW_CHARS, error_preview
from runs.models import TenderProject, TenderRun
from runs.vocabulary import (
    ACTIVE,
    FINISHED,
    FINISHED_STATUSES,
    KNOWN_KINDS,
    KNOWN_RUN_TYPES,
    NO_ERROR,
    NO_KIND,
    NO_STATUS,
    OTHER_STATUS,
    RunStatus,
    list_parameter,
    stored_value,
)


class StatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        choices = [*RunStatus.choices, (OTHER_STATUS, _("other (unknown)"))]
        if self.value() == FINISHED:  # linked from the stats page's failure windows
            choices.append((FINISHED, _("finished (success or failed)")))
        elif self.value() == ACTIVE:  # linked from the impossible-start notices
            choices.append((ACTIVE, _("active (pending or running)")))
        elif self.value() == NO_STATUS:  # the stats page's row of runs with an empty status
            choices.append((NO_STATUS, RunStatus.label_of("")))
        elif self.value() and self.value() not in {value for value, _label in choices}:
            status = stored_value(self.value())
            label = RunStatus.label_of(self.value() if status is None else status)
            choices.append((self.value(), truncate(label, 32)))
        return choices

    def queryset(self, request, queryset):
        if self.value() and (status := stored_value(self.value())) is not None:
            return queryset.filter(status=status)
        if self.value() == OTHER_STATUS:
            return queryset.of_unknown_status()
        if self.value() == NO_STATUS:
            return queryset.filter(status="")
        if self.value() == FINISHED:
            return queryset.filter(status__in=FINISHED_STATUSES)
        if self.value() == ACTIVE:
            return queryset.active()
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = gettext_lazy("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        # A kind and a run_type may share a name ("review"): each is offered once.
        kinds = dict.fromkeys((*KNOWN_KINDS, *KNOWN_RUN_TYPES))
        if self.value():
            kinds.setdefault(self.value())
        return [(kind, _("(no kind)") if kind == NO_KIND else shown_value(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        if self.value() and (kind := stored_value(self.value())) is not None:
            return queryset.with_run_kind().filter(run_kind=kind)
        if self.value() == NO_KIND:
            no_kind = Q(run_kind="") | Q(run_kind__isnull=True)
            return queryset.with_run_kind().filter(no_kind)
        if self.value():
            return queryset.with_run_kind().filter(run_kind=self.value())
        return queryset


def status_parameter(status: str) -> str:
    """The status filter's value for ``status`` as the stats count it (an empty one too: as
    a parameter, "" means no filter)."""
    return list_parameter(status, NO_STATUS)


def kind_parameter(kind: str | None) -> str:
    """The kind filter's value for ``kind`` as the stats count it (blank: no kind)."""
    return list_parameter(kind, NO_KIND)


def error_parameter(text: str) -> str:
    """The error filter's value for the stats page's error ``text`` ("": none)."""
    return list_parameter(text, NO_ERROR)


def shown_value(parameter: str) -> str:
    """A filter's value in the sidebar: the stored value it names."""
    value = stored_value(parameter)
    return truncate(parameter if value is None else value, 40)


class StuckFilter(admin.SimpleListFilter):
    title = gettext_lazy("stuck")
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if not known_choice(self):
            return queryset
        stuck = TenderRun.objects.stuck(StuckPolicy.configured())
        return among(queryset, stuck, exclude=self.value() == "no")


# Stuck, silent or waiting runs are a handful, read by a query of their own: as a subquery of
# the list's, a stale estimate of the runs around them (today's, before ANALYZE) made the
# planner run it again for each of those runs (15 to 30 s). Past this many (a fleet's crash),
# a subquery again.
LISTED_IDS = 1_000


def among(queryset: QuerySet, runs: QuerySet, *, exclude: bool = False) -> QuerySet:
    """``queryset``'s runs that are among ``runs`` (or, with ``exclude``, not)."""
    ids = list(runs.values_list("pk", flat=True)[: LISTED_IDS + 1])
    chosen = ids if len(ids) <= LISTED_IDS else runs.values("pk")
    return queryset.exclude(pk__in=chosen) if exclude else queryset.filter(pk__in=chosen)


class StartedFilter(admin.SimpleListFilter):
    """Presets (today, and the stats page's windows: 24 h, 7 d, 30 d) and a custom range:
    ``started_from`` / ``started_to``."""

    title = gettext_lazy("started")
    parameter_name = "started"
    parameter_names = ("started", "started_from", "started_to")
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
        return list(self.parameter_names)

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        windows = [(name, self.preset_labels.get(name, name)) for name in self.presets]
        return [("today", _("Today")), *windows, ("impossible", _("Impossible start time"))]

    def queryset(self, request, queryset):
        known_choice(self)
        if self.value() == "impossible":
            queryset = queryset.impossible_start()
        elif self.value() == "today":
            midnight = timezone.localtime(db_now()).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            queryset = queryset.filter(started_at__gte=midnight).plausible()
        elif self.value() in self.presets:
            since = db_now() - self.presets[self.value()]
            # As the stats page counts them: a start at +infinity is in no "last 24 hours".
            queryset = queryset.filter(started_at__gte=since).plausible()
        return self._custom_range(request, queryset)

    def _custom_range(self, request, queryset):
        bounds = {"started_from": self.started_from, "started_to": self.started_to}
        days = {name: parse_day(raw) if raw else None for name, raw in bounds.items()}
        bad = [name for name, raw in bounds.items() if raw and days[name] is None]
        if bad:
            raise DroppedParameters(bad, bad_date(bounds[bad[0]]))
        first, last = days["started_from"], days["started_to"]
        if first and last and first > last:
            message = _("The range from %(first)s to %(last)s is empty: its end comes first.")
            messages.warning(request, message % {"first": first, "last": last})
        for name, lookup, day_offset in (
            ("started_from", "started_at__gte", 0),
            ("started_to", "started_at__lt", 1),
        ):
            if days[name]:
                day = days[name] + timedelta(days=day_offset)
                moment = timezone.make_aware(datetime.combine(day, time.min))
                queryset = queryset.filter(**{lookup: moment})
        return queryset

    def choices(self, changelist):
        self.custom_range = self.custom_range_context(changelist)
        yield from super().choices(changelist)

    def custom_range_context(self, changelist) -> dict[str, Any]:
        keep = kept_parameters(changelist, self.expected_parameters())
        return {"started_from": self.started_from, "started_to": self.started_to, "keep": keep}


def within_text_search_window(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """Texts (messages, errors, project names) have no index: without a start range, a search
    compares only the runs of the last 30 days, never the whole table. A range's boxes left
    blank (``started_from=&started_to=``) are no range."""
    if any(request.GET.get(name) for name in StartedFilter.parameter_names):
        return queryset
    return queryset.filter(started_at__gte=db_now() - STATS_WINDOWS["30d"])


def known_choice(list_filter: admin.SimpleListFilter) -> bool:
    """Whether ``list_filter`` has a value, one of those it offers; another (a hand-edited
    URL) is dropped from the address, with a message (readonly.DroppedParameters)."""
    value = list_filter.value()
    if not value:
        return False
    if value not in {choice for choice, _label in list_filter.lookups(None, None)}:
        refuse(list_filter)
    return True


def refuse(list_filter: admin.SimpleListFilter) -> NoReturn:
    """Drop ``list_filter``'s value from the address, with a message."""
    message = _("Ignored %(value)s for the filter “%(filter)s”: it is not one of its choices.")
    raise DroppedParameters(
        [list_filter.parameter_name],
        message % {"value": truncate(list_filter.value(), 40), "filter": list_filter.title},
    )


def is_action_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


def bad_date(raw: str) -> str:
    return _("Ignored the date %(value)s: use YYYY-MM-DD, a year from 1900 to 9998.") % {
        "value": truncate(raw, 40)
    }


def kept_parameters(changelist, replaced: list[str]) -> dict[str, str]:
    """The list's parameters a filter's own form keeps when it submits: the other filters,
    the search and the ordering (a new choice starts again at the first page)."""
    return {key: value for key, value in changelist.params.items() if key not in replaced}


def parse_day(raw: str) -> date | None:
    try:
        day = parse_date(raw.strip())
    except ValueError:
        return None
    if day is None or not 1900 <= day.year <= 9998:
        return None
    return day


class ProjectFilter(admin.SimpleListFilter):
    """Projects can number tens of thousands: the filter is a search box (the admin's own
    autocomplete, answered by the projects' admin by exact id or name) plus the chosen
    project, which links to its project page. Every project name in the list links here."""

    title = gettext_lazy("project")
    parameter_name = "project"
    template = "admin/runs/tenderrun/project_filter.html"
    project_exists = False

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        chosen = list(TenderProject.objects.filter(pk=self.value()).values_list("pk", "name"))
        self.project_exists = bool(chosen)  # else no link to a project page that is not there
        return [(pk, truncate(name, 40) or pk) for pk, name in chosen] or [
            (self.value(), truncate(self.value(), 40))
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(project_id=self.value())
        return queryset

    def choices(self, changelist):
        self.search = self.search_context(changelist)
        yield from super().choices(changelist)

    def search_context(self, changelist) -> dict[str, Any]:
        """A select that the admin's autocomplete.js turns into a search box (the attributes
        of an AutocompleteSelect of TenderRun.project), holding the chosen project."""
        widget = AutocompleteSelect(TenderRun._meta.get_field("project"), admin.site)
        attrs = widget.build_attrs({}, {"id": "project-search"})
        attrs["data-placeholder"] = _("Search a project by name or id")
        chosen = format_html_join(
            "",
            '<option value="{}" selected>{}</option>',
            self.lookup_choices if self.value() else [],
        )
        keep = kept_parameters(changelist, [self.parameter_name])
        select = format_html(
            '<select name="{}"{}><option value=""></option>{}</select>',
            self.parameter_name,
            flatatt(attrs),
            chosen,
        )
        return {"widget": select, "keep": keep}


class ErrorFilter(admin.SimpleListFilter):
    """Runs whose error starts with the stats page's top error text (its first
    ERROR_PREVIEW_CHARS characters, compared as the stats page groups them); without a start
    range, among the runs of the last 30 days. Shown in the sidebar only while it applies."""

    title = gettext_lazy("error")
    parameter_name = "error"

    def has_output(self) -> bool:
        return bool(self.value())

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        shown = _("(no error text)") if self.value() == NO_ERROR else shown_value(self.value())
        return [(self.value(), shown)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # The stats page's links always give a start range.
        queryset = within_text_search_window(request, queryset)
        text = stored_value(self.value())
        if text is None:
            text = "" if self.value() == NO_ERROR else self.value()
        text = text[:ERROR_PREVIEW_CHARS]
        return queryset.alias(error_text=error_preview()).filter(error_text=text)
