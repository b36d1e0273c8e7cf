"""The bounds of every number tenderops accepts, and the one parser of numbers and switches.

Settings (at start-up), the routines, the commands and the API all check their input here, so
a value that passes start-up is one the routines accept. Pure Python: settings import it
before Django is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class InvalidParameter(ValueError):
    """A value outside what the routines accept; the message says which and why."""


def _(text: str) -> str:
    """gettext once Django's apps are ready; the English source before (settings)."""
    from django.apps import apps

    if not apps.ready:
        return text
    from django.utils.translation import gettext

    return gettext(text)


@dataclass(frozen=True)
class Limit:
    minimum: int
    maximum: int

    def check(self, value: object, name: str) -> int:
        """``value`` if it is a whole number within the bounds; else InvalidParameter."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(_("%(name)s must be a whole number.") % {"name": name})
        if not self.minimum <= value <= self.maximum:
            raise InvalidParameter(
                _("%(name)s must be between %(minimum)d and %(maximum)d, got %(value)d.")
                % {"name": name, "minimum": self.minimum, "maximum": self.maximum, "value": value}
            )
        return value

    def parse(self, raw: str, name: str) -> int:
        """The whole number written in ``raw`` (text from a flag, a URL or the environment)."""
        text = raw.strip()
        digits = text[1:] if text[:1] in ("+", "-") else text
        # ASCII only: int() also reads other scripts' digits (full-width "１０").
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidParameter(
                _("%(name)s must be a whole number, got %(value)s.")
                % {"name": name, "value": repr(raw[:40])}
            )
        if len(digits.lstrip("0")) > 20:  # far beyond every bound; not worth converting
            raise InvalidParameter(
                _("%(name)s must be between %(minimum)d and %(maximum)d.")
                % {"name": name, "minimum": self.minimum, "maximum": self.maximum}
            )
        return self.check(int(text), name)


def parse_switch(raw: str, name: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise InvalidParameter(
        _("%(name)s must be one of 1, true, yes, on, 0, false, no, off; got %(value)s.")
        % {"name": name, "value": repr(raw[:40])}
    )


# About 100 years: every duration stays far from datetime overflow.
TIMEOUT_MINUTES = Limit(1, 52_560_000)
RETENTION_DAYS = Limit(1, 36_500)
# tenderops' own history: at least the stats page's longest window of late finishes (30 days).
HISTORY_RETENTION_DAYS = Limit(31, 36_500)
PRUNE_BATCH_SIZE = Limit(1, 1_000_000)
# django-q2 stores a schedule's minutes in a smallint; a day is plenty for a monitor.
MONITOR_INTERVAL_MINUTES = Limit(1, 1_440)
# The stats page's figures are at most this old: from 2 minutes (the cluster refreshes them
# within a minute of their falling due) to a day.
STATS_MAX_AGE_SECONDS = Limit(120, 86_400)
TASK_TIMEOUT_SECONDS = Limit(60, 86_400)
CLUSTER_WORKERS = Limit(1, 64)
# Strict-Transport-Security max-age: up to two years, what browsers' preload lists ask for.
HSTS_SECONDS = Limit(0, 63_072_000)
# Demo seeding: total runs and projects, special groups (0 allowed: "no stuck runs"), days.
SEED_ROWS = Limit(1, 100_000_000)
SEED_GROUP = Limit(0, 1_000_000)
SEED_DAYS = Limit(1, 3_650)
# The demo's stand-in workers: seconds between their rounds, and how many rounds.
DEMO_INTERVAL_SECONDS = Limit(1, 3_600)
DEMO_ROUNDS = Limit(1, 1_000_000)
# Alerts: the same alert (event and kind) is not repeated sooner than this; a week at most.
ALERT_COOLDOWN_MINUTES = Limit(1, 10_080)
# One HTTP or SMTP attempt of a delivery; a robot that hangs longer is cut off.
ALERT_TIMEOUT_SECONDS = Limit(1, 60)
# Attempts of one delivery before it is marked failed, and the first wait between them
# (doubled after each failed attempt, at most an hour).
ALERT_MAX_ATTEMPTS = Limit(1, 20)
ALERT_RETRY_SECONDS = Limit(1, 3_600)
# The failure-spike rule: at least this many failures of a kind in the last hour.
SPIKE_MIN_FAILURES = Limit(1, 100_000)
SMTP_PORT = Limit(1, 65_535)
# Addresses tenderops writes to (webhooks, the public URL): an address longer than this is
# no robot's.
MAX_URL_LENGTH = 2_000
MAX_ALERT_EMAILS = 50
# The longest kind an API or CLI filter takes, and the most of a kind that tenderops keys its
# own rows on (counters' labels, alert cooldowns): a btree entry holds at most 2,704 bytes.
MAX_KIND_LENGTH = 200
# An operator's reason for "mark failed", written to each run's message; the configured
# default reason (TENDEROPS_MARK_FAILED_MESSAGE) is held to it too.
MAX_REASON_LENGTH = 2_000
# The most of one of the backend's text or JSON columns a run's page shows.
SHOWN_TEXT_CHARS = 100_000
# Bearer tokens (TENDEROPS_API_TOKEN, TENDEROPS_METRICS_TOKEN): long enough not to be guessed,
# short enough for any proxy's header limit.
MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 1_000

# A run's ``started_at`` outside [EARLIEST_START, database now + START_SKEW] is impossible
# (PostgreSQL also stores +/-infinity): such a run is shown and counted, never failed or pruned.
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)
START_SKEW = timedelta(days=1)

# The windows the stats page counts over (failures, late finishes, the runs list's presets);
# the last is also how far back a text search looks without a date range.
STATS_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
