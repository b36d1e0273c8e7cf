"""How the admin writes durations, times, long texts and JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _


def truncate(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_time(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 0:
        return _("not started yet")
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours >= 48:
        return _("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    if hours:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": seconds}


def pretty_json(value: Any) -> str:
    if value is None:
        return "–"
    return format_html(
        '<pre class="run-json">{}</pre>', json.dumps(value, ensure_ascii=False, indent=2)
    )
