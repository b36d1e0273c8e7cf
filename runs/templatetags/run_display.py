"""Template filters for the runs admin: counts, times and the backend's text written the way
the admin writes them."""

from datetime import datetime, timedelta

from django import template
from django.conf import settings

from runs import shown_text
from runs.admin.display import short_time
from runs.admin.display import why_failed as why_failed_text
from runs.admin.links import linked_code
from runs.admin.links import runs_list_url as build_runs_list_url
from runs.admin.site import time_zone_label as build_time_zone_label
from runs.durations import duration
from runs.vocabulary import MonitorMode, RunStatus

register = template.Library()


@register.filter
def grouped(value) -> str:
    """12345 -> "12,345": counts readable at a glance, in every language of the admin."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def moment(value: datetime | None) -> str:
    """A time in the admin's zone with its seconds; "infinity" for PostgreSQL's infinities."""
    return short_time(value)


@register.filter
def minutes_span(minutes: float | None) -> str:
    """12.5 -> "12 min 30 s", as the runs list writes durations; "–" for none."""
    return "–" if minutes is None else duration(timedelta(minutes=minutes))


@register.filter
def run_id_linked(run_id: str, limit: int = 200) -> str:
    """A run's id (cut to ``limit``, written out) linked to its page, when one can name it."""
    return linked_code("tenderrun", run_id, shown(run_id, int(limit)))


@register.filter
def why_failed(record) -> str:
    """The rule that failed an audited run (``FailedRunRecord``), with its silence."""
    return why_failed_text(record.reason, record.silent_minutes)


@register.filter
def shown(value: str | None, limit: int = 40) -> str:
    """The backend's text cut to ``limit`` characters, written out; "–" for none or blanks."""
    return shown_text.shown(value, limit)


@register.filter
def status_label(value: str) -> str:
    """The translated word for a known status, the raw value of any other."""
    return RunStatus.label_of(value)


@register.simple_tag
def runs_list_url(**filters) -> str:
    """``{% runs_list_url status=status kind=kind %}``: the runs list filtered to exactly
    the runs a number counts (runs.admin.links.runs_list_url)."""
    return build_runs_list_url(**filters)


@register.simple_tag
def monitor_reports_only() -> bool:
    """TENDEROPS_MONITOR_MODE=report: the monitor fails nothing (every page says so)."""
    return settings.TENDEROPS_MONITOR_MODE == MonitorMode.REPORT


@register.simple_tag
def time_zone_label() -> str:
    """The zone the admin shows times in, e.g. "Asia/Shanghai (UTC+08:00)"."""
    return build_time_zone_label()
