"""Django system checks (``manage.py check``, and the start of runserver, migrate and
qcluster) for settings that are valid but probably not what the operator meant."""

from __future__ import annotations

import difflib
import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

from runs.adoption import ADVICE, created_here, shape_problems
from runs.vocabulary import KNOWN_KINDS, KNOWN_RUN_TYPES, StuckRule
from tenderops.env import READ_VARIABLES

# Keys match a run's kind, or its run_type on old rows without one (docs/operations.md).
KNOWN_KEYS = tuple(dict.fromkeys(KNOWN_KINDS + KNOWN_RUN_TYPES))
# Variables the tests and the bench read (the settings' own are recorded as they are read).
TOOLING_VARIABLES = frozenset(
    {
        "TENDEROPS_TEST_DATABASE_NAME",
        "TENDEROPS_TEST_REDIS_URL",
        "TENDEROPS_CHROMIUM",
        "TENDEROPS_LIVE_SCHEMA",
    }
)

SETTINGS_DOCS = "See the settings in README.md and docs/reference.md."


@register()
def check_unknown_variables(app_configs, **kwargs) -> list[Warning]:
    """A misspelt variable is ignored without a word: TENDEROPS_MONITOR_MOD=report would
    leave the monitor failing runs while the operator believes it only reports them."""
    known = READ_VARIABLES | TOOLING_VARIABLES
    # Names are case-sensitive: tenderops_monitor_mode=report is as ignored as a misspelling.
    ours = sorted(name for name in os.environ if name.upper().startswith("TENDEROPS_"))
    warnings = []
    for name in (name for name in ours if name not in known):
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
        warnings.append(
            Warning(
                f"{name} is not a variable tenderops reads: it is ignored",
                hint=_likely_meant(name, close[0]) if close else SETTINGS_DOCS,
                id="tenderops.W005",
            )
        )
    return warnings


def _likely_meant(name: str, close: str) -> str:
    if name.upper() == close:
        return f"Did you mean {close}? Variable names are case-sensitive."
    return f"Did you mean {close}?"


@register()
def check_timeout_kinds(app_configs, **kwargs) -> list[Warning]:
    """A kind in TENDEROPS_STUCK_TIMEOUTS that tenderops does not know is only a warning: the
    backend may have added it. A misspelt one ("reveiw=30") would silently leave the real
    kind on the global timeout."""
    unknown = [kind for kind in settings.TENDEROPS_STUCK_TIMEOUTS if kind not in KNOWN_KEYS]
    return [
        Warning(
            f"TENDEROPS_STUCK_TIMEOUTS names the kind {kind!r}, which is not one of "
            f"{', '.join(KNOWN_KEYS)}",
            hint="Check its spelling; a kind the tender backend added since is fine as it is.",
            id="tenderops.W001",
        )
        for kind in unknown
    ]


@register()
def check_runtime_limits(app_configs, **kwargs) -> list[Warning]:
    """Limits that undo one another: a maximum runtime at or below a kind's timeout fails
    that kind's runs however much progress they write; failing pending runs before they count
    as waiting fails them before anyone was told they wait."""
    warnings = []
    max_minutes = settings.TENDEROPS_MAX_RUN_MINUTES
    if settings.TENDEROPS_STUCK_RULE == StuckRule.SILENCE:
        timeouts = {"TENDEROPS_STUCK_TIMEOUT_MINUTES": settings.TENDEROPS_STUCK_TIMEOUT_MINUTES}
        timeouts.update(settings.TENDEROPS_STUCK_TIMEOUTS)
        overruled = [
            f"{key} ({minutes})" for key, minutes in timeouts.items() if minutes >= max_minutes
        ]
        if overruled:
            warnings.append(
                Warning(
                    f"TENDEROPS_MAX_RUN_MINUTES ({max_minutes}) is not above the timeout of "
                    f"{', '.join(overruled)}: such runs are failed after {max_minutes} minutes "
                    "however much progress they write",
                    hint="Raise TENDEROPS_MAX_RUN_MINUTES above every timeout (default 240).",
                    id="tenderops.W002",
                )
            )
    fail_after = settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES
    if fail_after is not None and fail_after < settings.TENDEROPS_PENDING_ALERT_MINUTES:
        warnings.append(
            Warning(
                f"TENDEROPS_FAIL_PENDING_AFTER_MINUTES ({fail_after}) is below "
                f"TENDEROPS_PENDING_ALERT_MINUTES ({settings.TENDEROPS_PENDING_ALERT_MINUTES}): "
                "pending runs are failed before they are ever shown or alerted as waiting",
                hint="Fail pending runs after they have been waiting a while, not before.",
                id="tenderops.W003",
            )
        )
    return warnings


@register()
def check_monitor_interval(app_configs, **kwargs) -> list[Warning]:
    """A timeout no longer than the monitor's interval: a run picked up between two ticks is
    first seen past it, judged by its start (no sign of life seen yet) and failed at first
    sight however much progress it writes."""
    interval = settings.TENDEROPS_MONITOR_INTERVAL_MINUTES
    timeouts = {"TENDEROPS_STUCK_TIMEOUT_MINUTES": settings.TENDEROPS_STUCK_TIMEOUT_MINUTES}
    timeouts.update(settings.TENDEROPS_STUCK_TIMEOUTS)
    short = [f"{key} ({minutes})" for key, minutes in timeouts.items() if minutes <= interval]
    if not short:
        return []
    return [
        Warning(
            f"TENDEROPS_MONITOR_INTERVAL_MINUTES ({interval}) is not below the timeout of "
            f"{', '.join(short)}: such runs may be first seen past their timeout and failed at "
            "first sight, however much progress they write",
            hint="Run the monitor more often than the shortest timeout (default every minute).",
            id="tenderops.W004",
        )
    ]


@register(Tags.database)
def check_adopted_table(app_configs, databases=None, **kwargs) -> list[Error | Warning]:
    """``tender_runs`` in a shape tenderops would misjudge or fail to write (runs.adoption),
    or made by tenderops itself outside debug mode: ``manage.py check --database default``,
    and ``migrate`` before it migrates."""
    found: list[Error | Warning] = []
    for alias in databases or ():
        try:
            problems = shape_problems(connections[alias])
            made_here = not settings.DEBUG and created_here(connections[alias])
        except DatabaseError:
            continue  # unreachable: what runs next says so
        found += [Error(problem, hint=ADVICE, id="tenderops.E001") for problem in problems]
        if made_here:
            found.append(Warning(CREATED_HERE_WARNING, hint=CREATED_HERE_HINT, id="tenderops.W006"))
    return found


CREATED_HERE_WARNING = (
    "tender_runs was created empty by tenderops' migrate, not by the tender backend: the "
    "monitor watches no real run"
)
CREATED_HERE_HINT = (
    "In production DATABASE_URL must name the tender backend's database. A test or demo "
    "database made its own: nothing to do there."
)
