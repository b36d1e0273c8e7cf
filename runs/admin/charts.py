"""Server-side SVG charts for the stats page: no JavaScript library, no CDN, dark-mode aware
(colours come from CSS classes that use the admin's variables)."""

from __future__ import annotations

from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from runs.vocabulary import DISPLAY_ORDER

STATUS_ORDER = DISPLAY_ORDER
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 760, 220, 48, 28, 10


def _n(value: float) -> str:
    """Numbers are formatted before format_html, which escapes (and so stringifies) its args."""
    return f"{value:.1f}"


def _status_class(status: str) -> str:
    return status if status in STATUS_ORDER else "other"


def stacked_daily_bars(daily: list[tuple[date, dict[str, int]]]) -> SafeString:
    """Runs per day, stacked by status."""
    if not daily:
        return mark_safe("")
    peak = max((sum(counts.values()) for _day, counts in daily), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(daily)
    bars = []
    for index, (day, counts) in enumerate(daily):
        x = PAD_LEFT + index * step + step * 0.15
        y = PAD_TOP + plot_h
        ordered = [(s, counts[s]) for s in STATUS_ORDER if counts.get(s)]
        ordered += sorted((s, n) for s, n in counts.items() if s not in STATUS_ORDER and n)
        for status, count in ordered:
            h = count / peak * plot_h
            y -= h
            bars.append(
                format_html(
                    '<rect class="chart-{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{} {}: {}</title></rect>",
                    _status_class(status),
                    x,
                    y,
                    step * 0.7,
                    h,
                    day.isoformat(),
                    status,
                    count,
                )
            )
        if index % 5 == 0 or index == len(daily) - 1:
            bars.append(
                format_html(
                    '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                    x + step * 0.35,
                    HEIGHT - 8,
                    day.strftime("%m-%d"),
                )
            )
    axis = format_html(
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">0</text>'
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
        PAD_LEFT - 6,
        PAD_TOP + 10,
        peak,
        PAD_LEFT - 6,
        PAD_TOP + plot_h,
        PAD_LEFT,
        PAD_TOP + plot_h,
        WIDTH - 8,
        PAD_TOP + plot_h,
    )
    return _svg(_("Runs per day by status"), axis + SafeString("".join(bars)), "daily-chart")


def duration_bars(durations) -> SafeString:
    """Per kind: p50, p95 and max of successful runs, against the configured timeout."""
    if not durations:
        return mark_safe("")
    row_h, label_w = 34, 170
    height = PAD_TOP + row_h * len(durations) + 24
    longest = max(max(d.max_minutes, d.configured_minutes) for d in durations) or 1
    scale = (WIDTH - label_w - 60) / longest
    rows = []
    for index, d in enumerate(durations):
        y = PAD_TOP + index * row_h
        rows.append(
            format_html(
                '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
                '<rect class="chart-max" x="{}" y="{}" width="{}" height="8">'
                "<title>max {} min</title></rect>"
                '<rect class="chart-p95" x="{}" y="{}" width="{}" height="8">'
                "<title>p95 {} min</title></rect>"
                '<rect class="chart-p50" x="{}" y="{}" width="{}" height="8">'
                "<title>p50 {} min</title></rect>"
                '<line class="chart-timeout" x1="{}" y1="{}" x2="{}" y2="{}">'
                "<title>{} {} min</title></line>",
                label_w - 8,
                y + 16,
                d.kind,
                label_w,
                y + 2,
                _n(d.max_minutes * scale),
                _n(d.max_minutes),
                label_w,
                y + 10,
                _n(d.p95_minutes * scale),
                _n(d.p95_minutes),
                label_w,
                y + 18,
                _n(d.p50_minutes * scale),
                _n(d.p50_minutes),
                _n(label_w + d.configured_minutes * scale),
                y,
                _n(label_w + d.configured_minutes * scale),
                y + 28,
                _("timeout"),
                d.configured_minutes,
            )
        )
    legend = format_html_join(
        "",
        '<rect class="{}" x="{}" y="{}" width="10" height="10"/>'
        '<text class="chart-label" x="{}" y="{}">{}</text>',
        (
            (cls, label_w + i * 110, height - 14, label_w + i * 110 + 14, height - 5, text)
            for i, (cls, text) in enumerate(
                [
                    ("chart-p50", "p50"),
                    ("chart-p95", "p95"),
                    ("chart-max", "max"),
                    ("chart-timeout-key", _("timeout")),
                ]
            )
        ),
    )
    return _svg(
        _("Duration of successful runs per kind (minutes)"),
        SafeString("".join(rows)) + legend,
        "duration-chart",
        height=height,
    )


def _svg(title: str, body: SafeString, css_id: str, height: int = HEIGHT) -> SafeString:
    return format_html(
        '<svg id="{}" class="run-chart" role="img" viewBox="0 0 {} {}" '
        'preserveAspectRatio="xMinYMin meet" aria-label="{}"><title>{}</title>{}</svg>',
        css_id,
        WIDTH,
        height,
        title,
        title,
        body,
    )
