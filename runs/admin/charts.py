"""Server-side SVG charts for the stats page: no JavaScript library, no CDN, dark-mode aware
(colours come from CSS classes that use the admin's variables). Every bar or point that
counts runs is a link to the runs list of exactly those runs (``link`` callables)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from runs.shown_text import shown
from runs.vocabulary import DISPLAY_ORDER, RunStatus

STATUS_ORDER = DISPLAY_ORDER
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 760, 220, 48, 28, 10
KIND_COLOURS = 10  # chart-kind-0 .. chart-kind-9 in admin.css; further kinds share the last
AXIS_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 10080)


def _n(value: float) -> str:
    """Numbers are formatted before format_html, which escapes (and so stringifies) its args."""
    return f"{value:.1f}"


def _status_class(status: str) -> str:
    return status if status in STATUS_ORDER else "other"


def minutes_text(minutes: float) -> str:
    return _("%(minutes)s min") % {"minutes": _n(minutes)}


def _linked(url: str | None, shape: SafeString, count: int) -> SafeString:
    """``shape`` as a link to the runs list of the ``count`` runs it stands for."""
    if not url:
        return shape
    return format_html('<a href="{}" class="count-link" data-count="{}">{}</a>', url, count, shape)


def _day_labels(days: Sequence[date], x_of: Callable[[int], float]) -> list[SafeString]:
    return [
        format_html(
            '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text>',
            _n(x_of(index)),
            HEIGHT - 8,
            day.strftime("%m-%d"),
        )
        for index, day in enumerate(days)
        if index % 5 == 0 or index == len(days) - 1
    ]


def _y_axis(top_label: str, plot_h: float) -> SafeString:
    return format_html(
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">0</text>'
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
        PAD_LEFT - 6,
        PAD_TOP + 10,
        top_label,
        PAD_LEFT - 6,
        PAD_TOP + plot_h,
        PAD_LEFT,
        _n(PAD_TOP + plot_h),
        WIDTH - 8,
        _n(PAD_TOP + plot_h),
    )


def stacked_daily_bars(
    daily: Sequence[tuple[date, dict[str, int]]],
    *,
    order: Sequence[str],
    css_class: Callable[[str | None], str],
    label: Callable[[str | None], str],
    link: Callable[[date, str | None], str | None],
    title: str,
    css_id: str,
) -> SafeString:
    """Per day, one bar stacked by ``order`` (statuses, kinds), the others in one part (key
    None: the backend may write thousands of them); each part links to its runs."""
    if not daily:
        return mark_safe("")  # noqa: S308 - an empty, constant string
    peak = max((sum(counts.values()) for _day, counts in daily), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(daily)
    shown = set(order)
    bars = []
    for index, (day, counts) in enumerate(daily):
        x = PAD_LEFT + index * step + step * 0.15
        y = PAD_TOP + plot_h
        parts: list[tuple[str | None, int]] = [(k, counts[k]) for k in order if counts.get(k)]
        others = sum(n for key, n in counts.items() if key not in shown)
        parts += [(None, others)] if others else []
        for key, count in parts:
            h = count / peak * plot_h
            y -= h
            rect = format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}">'
                "<title>{} {}: {}</title></rect>",
                css_class(key),
                _n(x),
                _n(y),
                _n(step * 0.7),
                _n(h),
                day.isoformat(),
                label(key),
                count,
            )
            bars.append(_linked(link(day, key), rect, count))
    days = [day for day, _counts in daily]
    labels = _day_labels(days, lambda i: PAD_LEFT + i * step + step * 0.5)
    body = _y_axis(str(peak), plot_h) + SafeString("".join([*bars, *labels]))
    return _svg(title, body, css_id)


def runs_per_day(daily, link: Callable[[date, str | None], str | None]) -> SafeString:
    """Runs per day, stacked by status; the unknown statuses in one part (``link``'s None)."""
    return stacked_daily_bars(
        daily,
        order=STATUS_ORDER,
        css_class=lambda status: f"chart-{_status_class(status or '')}",
        label=lambda status: _("other (unknown)") if status is None else RunStatus.label_of(status),
        link=link,
        title=_("Runs per day by status"),
        css_id="daily-chart",
    )


def status_legend(daily) -> list[tuple[str, str]]:
    """The daily chart's legend: (css class suffix, label) of each status, and of the unknown
    statuses' part when a bar has one (its colour was in no legend)."""
    legend = [(status, RunStatus.label_of(status)) for status in STATUS_ORDER]
    if any(key not in STATUS_ORDER for _day, counts in daily for key in counts):
        legend.append(("other", _("other (unknown)")))
    return legend


def kind_class(kinds: Sequence[str]) -> Callable[[str | None], str]:
    """A kind's colour; the kinds left out (None) share the last."""
    last = KIND_COLOURS - 1
    return lambda kind: f"chart-kind-{last if kind is None else min(kinds.index(kind), last)}"


def failed_by_kind(daily, kinds: Sequence[str], link) -> SafeString:
    """Runs tenderops failed per day, stacked by ``kinds``, the others in one part."""
    return stacked_daily_bars(
        daily,
        order=kinds,
        css_class=kind_class(kinds),
        label=lambda kind: _("other kinds") if kind is None else shown(kind, 40),
        link=link,
        title=_("Runs failed by tenderops per day and kind"),
        css_id="failed-by-tenderops-chart",
    )


def failure_rate_line(rates: Sequence[tuple[date, int, int]], link) -> SafeString:
    """The share of finished runs that failed, per day; a point per day with runs."""
    if not rates:
        return mark_safe("")  # noqa: S308 - an empty, constant string
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(rates)
    points, marks = [], []
    for index, (day, failed, finished) in enumerate(rates):
        if not finished:
            continue
        x, y = PAD_LEFT + index * step + step * 0.5, PAD_TOP + plot_h * (1 - failed / finished)
        points.append(f"{_n(x)},{_n(y)}")
        circle = format_html(
            '<circle class="chart-rate-point" cx="{}" cy="{}" r="4">'
            "<title>{}: {}% ({}/{})</title></circle>",
            _n(x),
            _n(y),
            day.isoformat(),
            round(100 * failed / finished),
            failed,
            finished,
        )
        marks.append(_linked(link(day) if failed else None, circle, failed))
    line = format_html('<polyline class="chart-rate" points="{}"/>', " ".join(points))
    days = [day for day, _failed, _finished in rates]
    labels = _day_labels(days, lambda i: PAD_LEFT + i * step + step * 0.5)
    body = _y_axis("100 %", plot_h) + line + SafeString("".join([*marks, *labels]))
    return _svg(_("Failure rate per day"), body, "failure-rate-chart")


def axis_step(longest: float) -> int:
    """A round number of minutes between ticks: at most 8 ticks up to ``longest``."""
    return next((step for step in AXIS_STEPS if longest / step <= 8), AXIS_STEPS[-1])


def duration_bars(durations) -> SafeString:
    """Per kind: p50, p95 and max of successful runs, against the configured timeout, on an
    axis in minutes."""
    if not durations:
        return mark_safe("")  # noqa: S308 - an empty, constant string
    row_h, label_w = 34, 170
    axis_y = PAD_TOP + row_h * len(durations)
    height = axis_y + 52
    longest = max(max(d.max_minutes, d.configured_minutes) for d in durations) or 1
    step = axis_step(longest)
    scale = (WIDTH - label_w - 60) / (step * -(-longest // step))
    rows = []
    for index, d in enumerate(durations):
        y = PAD_TOP + index * row_h
        rows.append(
            format_html(
                '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
                '<rect class="chart-max" x="{}" y="{}" width="{}" height="8">'
                "<title>{} {}</title></rect>"
                '<rect class="chart-p95" x="{}" y="{}" width="{}" height="8">'
                "<title>p95 {}</title></rect>"
                '<rect class="chart-p50" x="{}" y="{}" width="{}" height="8">'
                "<title>p50 {}</title></rect>"
                '<line class="chart-timeout" x1="{}" y1="{}" x2="{}" y2="{}">'
                "<title>{} {}</title></line>",
                label_w - 8,
                y + 16,
                shown(d.kind, 24),  # what fits left of the bars; "–" for none, as the table
                label_w,
                y + 2,
                _n(d.max_minutes * scale),
                _("max"),
                minutes_text(d.max_minutes),
                label_w,
                y + 10,
                _n(d.p95_minutes * scale),
                minutes_text(d.p95_minutes),
                label_w,
                y + 18,
                _n(d.p50_minutes * scale),
                minutes_text(d.p50_minutes),
                _n(label_w + d.configured_minutes * scale),
                y,
                _n(label_w + d.configured_minutes * scale),
                y + 28,
                _("timeout"),
                minutes_text(d.configured_minutes),
            )
        )
    ticks = format_html_join(
        "",
        '<line class="chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_n(x), PAD_TOP, _n(x), axis_y, _n(x), axis_y + 14, minute)
            for minute in range(0, int(step * -(-longest // step)) + 1, step)
            for x in [label_w + minute * scale]
        ),
    )
    axis = format_html(
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>',
        label_w,
        axis_y,
        WIDTH - 50,
        axis_y,
        label_w - 8,
        axis_y + 14,
        _("minutes"),
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
                    ("chart-max", _("max")),
                    ("chart-timeout-key", _("timeout")),
                ]
            )
        ),
    )
    return _svg(
        _("Duration of successful runs per kind (minutes)"),
        ticks + axis + SafeString("".join(rows)) + legend,
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
