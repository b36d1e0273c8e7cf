"""How a duration is written, in the active language: the one definition the admin's pages,
their live counter (runs/static/runs/admin.js), the CSV export and the alerts share."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils.translation import gettext as _

MINUTE, HOUR, DAY = 60, 3600, 86400


def duration_formats() -> list[dict[str, Any]]:
    """The one definition of how a duration is written, in the active language.

    Longest first, each format applies ``from`` that many seconds on. Its ``fields`` name the
    pattern's placeholders with their size in seconds: the first takes whole units of the
    duration, each next one whole units of what the one before left. The runs list renders
    this list into its page, and the live counter (runs/static/runs/admin.js) fills the very
    same translated patterns, so a ticking duration never changes language or rounding.
    """
    return [
        {
            "from": 48 * HOUR,
            "pattern": unbroken(_("%(days)d d %(hours)d h")),
            "fields": [("days", DAY), ("hours", HOUR)],
        },
        {
            "from": HOUR,
            "pattern": unbroken(_("%(hours)d h %(minutes)02d min")),
            "fields": [("hours", HOUR), ("minutes", MINUTE)],
        },
        {
            "from": 0,
            "pattern": unbroken(_("%(minutes)d min %(seconds)02d s")),
            "fields": [("minutes", MINUTE), ("seconds", 1)],
        },
    ]


def unbroken(pattern: str) -> str:
    """``pattern`` with a no-break space between each number and its unit, and a word joiner
    inside a unit written in ideographs: a narrow column wraps "1 min / 01 s", never
    "1 min 01 / s", nor "12 小 / 时" (a line may break between any two ideographs)."""
    pattern = re.sub(r"(%\(\w+\)0?\d*d) ", "\\1\u00a0", pattern)
    return re.sub(r"(?<=[\u4e00-\u9fff])(?=[\u4e00-\u9fff])", WORD_JOINER, pattern)


WORD_JOINER = "\u2060"


def without_joiners(text: str) -> str:
    """``text`` for a file rather than a page (a CSV cell: "小时" must be found there)."""
    return text.replace(WORD_JOINER, "")


def format_seconds(seconds: int, formats: list[dict[str, Any]]) -> str:
    """``seconds`` (0 or more) written with the first of ``formats`` that applies."""
    chosen = next(f for f in formats if seconds >= f["from"])
    values, rest = {}, seconds
    for name, size in chosen["fields"]:
        values[name], rest = divmod(rest, size)
    return chosen["pattern"] % values


def duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 0:
        return _("not started yet")
    return format_seconds(seconds, duration_formats())


def plain_duration(span: timedelta) -> str:
    """``duration`` without the page's line-break hints, for text that is no page's (an
    alert's line, where a word joiner is written out)."""
    return duration(span).replace(WORD_JOINER, "").replace("\u00a0", " ")
