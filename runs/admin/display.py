"""How the admin writes durations, times, long texts and JSON."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from runs.durations import duration
from runs.infinite_timestamps import (
    AFTER_9999,
    BEFORE_YEAR_1,
    INFINITY,
    MINUS_INFINITY,
    is_infinite,
)
from runs.shown_text import shortened, visible
from runs.vocabulary import FailReason


def truncate(text: str | None, limit: int) -> str:
    """The backend's text as a page shows it (runs.shown_text), cut to ``limit``."""
    return shortened(text, limit)


def beyond_python_label(moment: datetime) -> str:
    return {
        INFINITY: _("infinity"),
        MINUS_INFINITY: _("-infinity"),
        AFTER_9999: _("after the year 9999"),
        BEFORE_YEAR_1: _("before the year 1"),
    }[moment]


def short_time(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    if is_infinite(moment):
        return beyond_python_label(moment)
    try:
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
    except OverflowError:  # the first or last day Python knows, shifted into the local zone
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def span_between(start: datetime | None, end: datetime | None) -> str:
    """The duration from ``start`` to ``end``; "–" when either is missing or infinite, and
    said when ``end`` comes first (a run the backend says finished before it started)."""
    if start is None or end is None or is_infinite(start) or is_infinite(end):
        return "–"
    if end < start:
        return _("– (finished before it started)")
    return duration(end - start)


def impossible_start() -> str:
    """In place of a run's 20,000 days since 1970: it is never judged stuck, nor late."""
    return format_html(
        '<span class="run-odd-value" title="{}">–</span>', _("Impossible start time")
    )


def percent(share: float | None) -> int | None:
    """A progress share as a whole percentage within 0..100; None for none or NaN."""
    if share is None or math.isnan(share):
        return None
    return round(min(max(share, 0.0), 1.0) * 100)


def progress_bar(progress: float | None) -> str:
    share = percent(progress)
    if share is None:
        return "–" if progress is None else "NaN"
    bar = format_html(
        '<span class="run-progress" title="{}%"><span style="width: {}%"></span></span> {}%',
        share,
        share,
        share,
    )
    if 0.0 <= progress <= 1.0:
        return bar
    # The bar stops at its ends; the value the backend wrote stays readable.
    return format_html('{} <span class="run-odd-value">({})</span>', bar, f"{progress:g}")


def why_failed(reason: str, silent_minutes: float | None) -> str:
    """The rule that failed a run, as the audit says it: "silent for 42 min 10 s", "over the
    maximum runtime", "running too long" (the age rule), "marked failed by hand"."""
    if silent_minutes is not None and reason in {FailReason.SILENT, FailReason.WAITING}:
        span = {"span": duration(timedelta(minutes=silent_minutes))}
        if reason == FailReason.WAITING:
            return _("pending for %(span)s") % span
        return _("silent for %(span)s") % span
    return FailReason.label_of(reason)


def pretty_json(value: Any) -> str:
    if value is None:
        return "–"
    # JSON escapes C0 controls itself; bidirectional and C1 ones are written out here.
    text = visible(json.dumps(value, ensure_ascii=False, indent=2))
    return format_html('<pre class="run-json">{}</pre>', text)


def pretty_stored_json(text: str | None) -> str:
    """JSON the backend stored, read as text: indented when Python can read it, as stored
    when it cannot (nested thousands deep, an integer of thousands of digits: a 500 when
    read as a field), shown either way."""
    if text is None:
        return "–"
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    return format_html('<pre class="run-json">{}</pre>', visible(text))
