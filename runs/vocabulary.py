"""The words tenderops shares with the tender backend: statuses and kinds of runs.

This is the only module that spells a status; everything else says ``RunStatus.RUNNING``.
A status the backend writes that is not listed here is shown as-is and never touched.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    SUCCESS = "success", _("success")
    FAILED = "failed", _("failed")

    @classmethod
    def label_of(cls, status: str | None) -> str:
        """The translated label of a known status; any other quoted, with its spaces and
        control characters visible (``'running '``), never to be taken for a known one."""
        if status in cls.values:
            return str(cls(status).label)
        return "–" if status is None else repr(status)


class StuckRule(models.TextChoices):
    """How a running run is judged stuck (TENDEROPS_STUCK_RULE)."""

    SILENCE = "silence", _("by its last sign of life")
    AGE = "age", _("by its age")


class MonitorMode(models.TextChoices):
    """What the scheduled monitor does with stuck runs (TENDEROPS_MONITOR_MODE)."""

    FAIL = "fail", _("fail them")
    REPORT = "report", _("only report them")


# The fact of a ``resolved`` alert that closes report mode's incidents because the monitor
# now fails stuck runs (not because none is stuck).
REPORT_MODE_ENDED = "report_mode_ended"


class FailReason(models.TextChoices):
    """Why a run was failed, as the audit and the API say it."""

    SILENT = "silent", _("silent too long")
    MAX_RUNTIME = "max_runtime", _("over the maximum runtime")
    AGE = "age", _("running too long")
    WAITING = "waiting", _("pending too long")
    MANUAL = "manual", _("marked failed by hand")

    @classmethod
    def label_of(cls, reason: str) -> str:
        return str(cls(reason).label) if reason in cls.values else reason


class DeliveryStatus(models.TextChoices):
    """Where an alert's delivery to one channel stands."""

    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    RETRYING = "retrying", _("retrying")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    MISCONFIGURED = "misconfigured", _("configuration error")


# Runs still in the workers' hands: observed, and the only ones a person may mark failed.
ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)
FINISHED_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILED)
# The order of charts and tables: the common outcomes first.
DISPLAY_ORDER = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.RUNNING, RunStatus.PENDING)

# The kinds the tender backend writes: the original run_type values, and the newer kind
# values (NULL on old rows). The kind shown and matched is the kind, or the run_type where the
# kind is NULL, empty or blank (TenderRunQuerySet.with_run_kind is the same rule in SQL).
KNOWN_RUN_TYPES = ("project_info", "risks", "directory", "review", "docx")
KNOWN_KINDS = (
    "extract_project_info",
    "extract_risks",
    "generate_directory",
    "review",
    "generate_docx",
)


# What a blank kind may consist of (ASCII whitespace, as the database trims it too).
WHITESPACE = " \t\n\r\f\v"


def run_kind(kind: str | None, run_type: str | None) -> str:
    # run_type is NOT NULL in the backend's schema; a table altered to allow it is named by
    # the health check, and its runs are shown as kindless meanwhile.
    return (kind or "").strip(WHITESPACE) or run_type or ""


# The runs list's filter values beyond the stored ones (the stats page links with them).
OTHER_STATUS = "__other__"
FINISHED = "__finished__"
ACTIVE = "__active__"  # pending or running: the list's impossible-start notice links with it
NO_STATUS = "__blank__"
NO_ERROR = "__none__"  # the error filter: runs without an error text
NO_KIND = "__none__"  # the kind filter: runs with neither kind nor run_type (shown "–")
# A stored value that reads as one of them (a status written "__finished__" listed every
# finished run), or starts with LITERAL, is a parameter as LITERAL and itself.
LITERAL = "="
LIST_KEYWORDS = frozenset({OTHER_STATUS, FINISHED, ACTIVE, NO_STATUS, NO_ERROR, NO_KIND})


def list_parameter(value: str | None, empty: str) -> str:
    """The runs list's filter value for the stored ``value`` (``empty`` if it has none)."""
    if not value:
        return empty
    return f"{LITERAL}{value}" if value in LIST_KEYWORDS or value.startswith(LITERAL) else value


def stored_value(parameter: str) -> str | None:
    """The stored value a filter's ``parameter`` names literally (None: a keyword or as is)."""
    return parameter[len(LITERAL) :] if parameter.startswith(LITERAL) else None
