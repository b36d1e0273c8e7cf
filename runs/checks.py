"""Django system checks (``manage.py check``, and the start of runserver and migrate) for
settings that are valid but probably not what the operator meant."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

from runs.vocabulary import KNOWN_KINDS, KNOWN_RUN_TYPES

# Keys match a run's kind, or its run_type on old rows without one (docs/operations.md).
KNOWN_KEYS = tuple(dict.fromkeys(KNOWN_KINDS + KNOWN_RUN_TYPES))


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
