"""The tender backend's tables (adopted, never reshaped) and tenderops' own tables.

``tender`` holds the adopted ``tender_projects`` and ``tender_runs`` with the named sets of
runs that the routines speak of; ``own`` the audit log, heartbeats, observations and the
stats snapshot; ``alerts`` the alerts and monotonic counters.
"""

from runs.models.alerts import (
    Alert,
    AlertAttempt,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertGate,
    Counter,
)
from runs.models.own import (
    Actor,
    FailedRunRecord,
    Heartbeat,
    MaintenanceAction,
    RunObservation,
    StatsSnapshot,
)
from runs.models.tender import (
    Fingerprint,
    StripWhitespace,
    StuckJudge,
    TenderProject,
    TenderRun,
    TenderRunQuerySet,
    fingerprint,
)

__all__ = [
    "Actor",
    "Alert",
    "AlertAttempt",
    "AlertChannel",
    "AlertDelivery",
    "AlertEvent",
    "AlertGate",
    "Counter",
    "FailedRunRecord",
    "Fingerprint",
    "Heartbeat",
    "MaintenanceAction",
    "RunObservation",
    "StatsSnapshot",
    "StripWhitespace",
    "StuckJudge",
    "TenderProject",
    "TenderRun",
    "TenderRunQuerySet",
    "fingerprint",
]
