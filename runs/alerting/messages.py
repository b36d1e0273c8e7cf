"""What an alert says, in ``TENDEROPS_ALERT_LANGUAGE``: a title, lines, a link; rendered as
markdown (WeCom, DingTalk), plain text (mail, the webhook's ``text``) and Feishu's rich text,
each fitted to its channel's size limit.

Every title starts with "tenderops", so a DingTalk or Feishu robot secured by the keyword
``tenderops`` accepts every message. Values from the database (kinds, ids, error texts) are
flattened to one line, shortened, stripped of markup characters and their controls written
out (runs.shown_text).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from runs.alerting.message import Message, clean
from runs.durations import plain_duration
from runs.models import Alert, AlertEvent
from runs.shown_text import labelled
from runs.vocabulary import NO_KIND, REPORT_MODE_ENDED, MonitorMode, RunStatus, list_parameter

SEVERITIES = {
    AlertEvent.MONITOR_FAILED: "warning",
    AlertEvent.STUCK_NOT_FAILED: "warning",
    AlertEvent.WAITING: "warning",
    AlertEvent.LATE_FINISH: "info",
    AlertEvent.FAILURE_SPIKE: "critical",
    AlertEvent.MONITOR_STALE: "critical",
    AlertEvent.MONITOR_RECOVERED: "resolved",
    AlertEvent.RESOLVED: "resolved",
    AlertEvent.TEST: "info",
}
RESOLVED_KINDS_NAMED = 10  # a resolution's title names this many kinds, then counts the rest
MAX_SHOWN_MINUTES = 10**9  # past this a wait is no duration (timedelta's own limit is 1.5e12)


def render(alert: Alert, language: str | None = None) -> Message:
    language = language or settings.TENDEROPS_ALERT_LANGUAGE
    with translation.override(language):
        builder = BUILDERS.get(alert.event, _unknown)
        title, lines, (path, link_text) = builder(alert.facts or {}, alert.kind)
        return Message(
            event=alert.event,
            severity=SEVERITIES.get(alert.event, "info"),
            title=f"tenderops · {title}",
            lines=[*_raised(alert), *lines],
            link=absolute(path),
            link_text=link_text,
            language=language,
        )


def _raised(alert: Alert) -> list[str]:
    """When the alert was raised, first (lines that do not fit go from the end): a message
    delivered late (a channel retried for an hour, mail queued) must not read as news, and
    the robots show only when they posted it."""
    if not isinstance(alert.raised_at, datetime):  # not saved yet
        return []
    return [_("Raised %(when)s.") % {"when": when(alert.raised_at)}]


def absolute(path: str) -> str:
    """``path`` (from reverse()) on TENDEROPS_PUBLIC_URL, which already holds any sub-path the
    admin is served under: a web process's reverse() adds that prefix too (SCRIPT_NAME), a
    cluster's does not, and a link must not depend on which process raised the alert."""
    if not path or not settings.TENDEROPS_PUBLIC_URL:
        return path
    prefix = get_script_prefix()
    if prefix != "/" and path.startswith(prefix):
        path = "/" + path.removeprefix(prefix)
    return f"{settings.TENDEROPS_PUBLIC_URL}{path}"


def runs_list(**query: Any) -> str:
    url = reverse("admin:runs_tenderrun_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def when(value: Any) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return _("unknown")
    zone = settings.TIME_ZONE
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S} ({zone})"


def percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.1f} %"
    except (TypeError, ValueError):
        return "?"


def rule_label(rule: Any) -> str:
    labels = {
        "age": _("running longer than its kind's timeout"),
        "silence": _("silent longer than its kind's timeout"),
        "max_runtime": _("running longer than the maximum run time"),
    }
    return labels.get(rule, clean(rule)) if rule else ""


def source_label(source: Any) -> str:
    labels = {
        "health": _("the health endpoint"),
        "watchdog": _("manage.py tenderops_watchdog"),
        "monitor": _("the monitor itself"),
    }
    return labels.get(source, clean(source, 40))


def kind_lines(kinds: Mapping[str, Any], extra) -> Iterator[str]:
    for kind, entry in sorted((kinds or {}).items()):
        entry = entry if isinstance(entry, Mapping) else {}
        count = entry.get("count", 0)
        # An empty kind or id is the backend's, shown as every page shows it.
        ids = ", ".join(clean(run_id, 40) or '""' for run_id in list(entry.get("ids") or [])[:5])
        words = ngettext("%(count)d run", "%(count)d runs", count) % {"count": count}
        details = [words, *extra(entry)]
        # The language's punctuation: Chinese robots show 类型：2 个任务；超时 10 分钟（…）.
        line = labelled(clean(kind, 60) or "–", _("; ").join(d for d in details if d))
        yield _("%(line)s (%(ids)s)") % {"line": line, "ids": ids} if ids else line


def _timeout(entry: Mapping) -> list[str]:
    minutes = entry.get("timeout_minutes")
    return [_("timeout %(minutes)s min") % {"minutes": minutes}] if minutes else []


def _total(facts: Mapping, kinds: Mapping) -> int:
    total = facts.get("total")
    if isinstance(total, int):
        return total
    return sum(int(e.get("count", 0)) for e in kinds.values() if isinstance(e, Mapping))


def _cooling(facts: Mapping, kinds: Mapping) -> list[str]:
    """The line a digest's title needs when it counts runs its kinds do not list: those of
    kinds alerted within the cooldown, which the digest leaves out. "With an alert", not
    "told": an alert raised while no channel was configured was told to nobody."""
    listed = sum(int(e.get("count", 0)) for e in kinds.values() if isinstance(e, Mapping))
    left_out = _total(facts, kinds) - listed
    if left_out <= 0:
        return []
    return [
        ngettext(
            "%(count)d more run of kinds with an alert within the cooldown (%(minutes)s min).",
            "%(count)d more runs of kinds with an alert within the cooldown (%(minutes)s min).",
            left_out,
        )
        % {"count": left_out, "minutes": settings.TENDEROPS_ALERT_COOLDOWN_MINUTES}
    ]


def _monitor_failed(facts, kind):
    kinds = facts.get("kinds") or {}
    count = _total(facts, kinds)
    title = ngettext(
        "the monitor failed %(count)d stuck run", "the monitor failed %(count)d stuck runs", count
    ) % {"count": count}
    lines = [*kind_lines(kinds, _timeout), *_cooling(facts, kinds)]
    if facts.get("rule"):
        lines.append(_("Rule: %(rule)s.") % {"rule": rule_label(facts["rule"])})
    # A digest that also tells a stopped tick's runs links the cleanups it tells.
    actions = facts.get("action_ids") or [facts.get("action_id")]
    linked = ",".join(str(action) for action in actions if action)
    cleanups = facts.get("cleanups")
    if isinstance(cleanups, int) and cleanups > len(actions):
        lines.append(
            _("The link lists the runs of %(linked)d of the %(all)d cleanups told here.")
            % {"linked": len(actions), "all": cleanups}
        )
    path = runs_list(action=linked) if linked else runs_list(status=RunStatus.FAILED)
    return title, lines, (path, _("Open these runs in the admin"))


def _stuck_not_failed(facts, kind):
    kinds = facts.get("kinds") or {}
    count = _total(facts, kinds)
    title = ngettext(
        "%(count)d stuck run left running (report mode)",
        "%(count)d stuck runs left running (report mode)",
        count,
    ) % {"count": count}
    lines = [*kind_lines(kinds, _timeout), *_cooling(facts, kinds)]
    if facts.get("rule"):
        lines.append(_("Rule: %(rule)s.") % {"rule": rule_label(facts["rule"])})
    lines.append(_("TENDEROPS_MONITOR_MODE=report: the monitor fails nothing."))
    return title, lines, (runs_list(stuck="yes"), _("Open the stuck runs in the admin"))


def _waiting(facts, kind):
    kinds = facts.get("kinds") or {}
    count = _total(facts, kinds)
    minutes = facts.get("threshold_minutes", settings.TENDEROPS_PENDING_ALERT_MINUTES)
    title = ngettext(
        "%(count)d run waiting longer than %(minutes)s minutes",
        "%(count)d runs waiting longer than %(minutes)s minutes",
        count,
    ) % {"count": count, "minutes": minutes}

    def oldest(entry):
        value = entry.get("oldest_minutes")
        if not isinstance(value, int | float) or not 0 < value < MAX_SHOWN_MINUTES:
            return []
        # As the runs list writes it: 576,007 minutes read as nothing (the new operator).
        return [_("oldest waiting %(span)s") % {"span": plain_duration(timedelta(minutes=value))}]

    lines = [*kind_lines(kinds, oldest), *_cooling(facts, kinds)]
    lines.append(_("Are the workers running and taking runs from the queue?"))
    return (
        title,
        lines,
        (runs_list(status=RunStatus.PENDING), _("Open the pending runs in the admin")),
    )


def _late_finish(facts, kind):
    kinds = facts.get("kinds") or {}
    count = _total(facts, kinds)
    title = ngettext(
        "%(count)d run finished after tenderops had failed it",
        "%(count)d runs finished after tenderops had failed them",
        count,
    ) % {"count": count}

    def suggestion(entry):
        parts = _timeout(entry)
        if entry.get("suggested_minutes"):
            parts.append(_("suggested %(minutes)s min") % {"minutes": entry["suggested_minutes"]})
        return parts

    lines = [*kind_lines(kinds, suggestion), *_cooling(facts, kinds)]
    lines.append(_("These runs were alive: their kind's timeout is probably too short."))
    return title, lines, (reverse("admin:runs_tenderrun_stats"), _("Open the statistics"))


def _failure_spike(facts, kind):
    kinds = facts.get("kinds")
    if not isinstance(kinds, Mapping):  # an alert of one kind, raised before digests
        kinds = {kind: {**facts, "count": facts.get("hour_failed", 0)}}
    if len(kinds) == 1:
        ((only, entry),) = kinds.items()
        title = _("%(kind)s is failing: %(rate)s in the last hour") % {
            "kind": clean(only, 60),
            "rate": percent(entry.get("hour_rate")),
        }
        path = runs_list(status=RunStatus.FAILED, kind=list_parameter(only, NO_KIND), started="24h")
    else:
        title = ngettext(
            "%(count)d kind is failing far more than usual",
            "%(count)d kinds are failing far more than usual",
            len(kinds),
        ) % {"count": len(kinds)}
        path = runs_list(status=RunStatus.FAILED, started="24h")
    lines = [*kind_lines(kinds, _spike_details)]
    return title, lines, (path, _("Open the failed runs in the admin"))


def _spike_details(entry: Mapping) -> list[str]:
    details = [
        _(
            "%(rate)s of the last hour's %(finished)s finished runs failed "
            "(%(week)s in the 7 days before)"
        )
        % {
            "rate": percent(entry.get("hour_rate")),
            "finished": entry.get("hour_finished", "?"),
            "week": percent(entry.get("week_rate")),
        }
    ]
    if entry.get("top_error"):
        details.append(
            _("most frequent error: %(error)s") % {"error": clean(entry["top_error"], 80)}
        )
    return details


def _monitor_stale(facts, kind):
    last = facts.get("last_run_at")
    lines = [
        _("Last run: %(when)s.") % {"when": when(last)} if last else _("It has never run."),
        ngettext(
            "It should run every minute: is python manage.py qcluster running?",
            "It should run every %(minutes)s minutes: is python manage.py qcluster running?",
            settings.TENDEROPS_MONITOR_INTERVAL_MINUTES,
        )
        % {"minutes": settings.TENDEROPS_MONITOR_INTERVAL_MINUTES},
    ]
    if facts.get("source"):
        lines.append(_("Noticed by: %(source)s.") % {"source": source_label(facts["source"])})
    stats = reverse("admin:runs_tenderrun_stats")
    return _("the monitor is stale"), lines, (stats, _("Open the statistics"))


def _monitor_recovered(facts, kind):
    reporting = settings.TENDEROPS_MONITOR_MODE == MonitorMode.REPORT
    lines = [
        _("The monitor runs again, in report mode: it records stuck runs, fails none.")
        if reporting
        else _("The monitor runs again; stuck runs are being rescued.")
    ]
    if facts.get("source"):
        lines.append(_("Noticed by: %(source)s.") % {"source": source_label(facts["source"])})
    stats = reverse("admin:runs_tenderrun_stats")
    return _("the monitor has recovered"), lines, (stats, _("Open the statistics"))


def _resolved(facts, kind):
    """A condition of some kinds has cleared (``facts["resolves"]`` names its event)."""
    kinds = sorted(facts.get("kinds") or {}) or [kind]
    shown = _(", ").join(clean(name, 60) or "–" for name in kinds[:RESOLVED_KINDS_NAMED])
    if len(kinds) > RESOLVED_KINDS_NAMED:
        left = len(kinds) - RESOLVED_KINDS_NAMED
        shown = _("%(kinds)s and %(count)d more") % {"kinds": shown, "count": left}
    names = {"kinds": shown}
    resolves = facts.get("resolves")
    if resolves == AlertEvent.WAITING:
        title = _("no run waits too long any more: %(kinds)s") % names
        link = runs_list(status=RunStatus.PENDING), _("Open the pending runs in the admin")
    elif resolves == AlertEvent.FAILURE_SPIKE:
        title = _("failing no more than usual again: %(kinds)s") % names
        link = (
            runs_list(status=RunStatus.FAILED, started="24h"),
            _("Open the failed runs in the admin"),
        )
    elif resolves == AlertEvent.STUCK_NOT_FAILED and facts.get(REPORT_MODE_ENDED):
        title = _("report mode has ended, the monitor fails stuck runs: %(kinds)s") % names
        link = runs_list(audit="any"), _("Open the runs tenderops failed in the admin")
    elif resolves == AlertEvent.STUCK_NOT_FAILED:
        title = _("no run is stuck any more (report mode): %(kinds)s") % names
        link = runs_list(stuck="yes"), _("Open the stuck runs in the admin")
    else:
        title = _("resolved: %(kinds)s") % names
        link = reverse("admin:runs_alertdelivery_changelist"), _("Open the alert log")
    lines = [
        _(
            "The condition has cleared; if it comes back, it is told again once "
            "TENDEROPS_ALERT_COOLDOWN_MINUTES (%(minutes)s) have passed since it was last told."
        )
        % {"minutes": settings.TENDEROPS_ALERT_COOLDOWN_MINUTES}
    ]
    return title, lines, link


def _test(facts, kind):
    who = clean(facts.get("requested_by") or "tenderops", 60)
    lines = [
        _("A test message, sent by %(who)s. If you can read it, this channel works.") % {"who": who}
    ]
    log = reverse("admin:runs_alertdelivery_changelist")
    return _("test message"), lines, (log, _("Open the alert log"))


def _unknown(facts, kind):
    return clean(kind or "alert"), [], ("", "")


BUILDERS = {
    AlertEvent.MONITOR_FAILED: _monitor_failed,
    AlertEvent.STUCK_NOT_FAILED: _stuck_not_failed,
    AlertEvent.WAITING: _waiting,
    AlertEvent.LATE_FINISH: _late_finish,
    AlertEvent.FAILURE_SPIKE: _failure_spike,
    AlertEvent.MONITOR_STALE: _monitor_stale,
    AlertEvent.MONITOR_RECOVERED: _monitor_recovered,
    AlertEvent.RESOLVED: _resolved,
    AlertEvent.TEST: _test,
}
