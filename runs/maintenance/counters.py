"""Monotonic counters behind /metrics, kept in ``tenderops_counter``, a table retention never
prunes: a counter never goes down, not when runs or the audit are pruned, not across restarts.

Each counter is a name and a set of labels; ``increment`` adds to it in the caller's
transaction, so a count commits (or rolls back) with the change it counts. The failing
statement keeps ``RUNS_FAILED`` in the same statement instead (``counter_cte``).

| counter | labels | fed by |
|---|---|---|
| ``tenderops_runs_failed_total`` | kind, actor | every failing (``failing_statements``) |
| ``tenderops_runs_pruned_total`` | status | every prune batch (``retention``) |
| ``tenderops_late_finishes_total`` | kind | the late-finish sweep (``ticks.late_finish_tick``) |
| ``tenderops_alerts_sent_total`` | channel, result | every delivery attempt (``runs.alerting``) |
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.db import connection

from runs.limits import MAX_KIND_LENGTH
from runs.maintenance.db import is_postgresql
from runs.models import Counter

RUNS_FAILED = "tenderops_runs_failed_total"
RUNS_PRUNED = "tenderops_runs_pruned_total"
LATE_FINISHES = "tenderops_late_finishes_total"
ALERTS_SENT = "tenderops_alerts_sent_total"

COUNTER_TABLE = Counter._meta.db_table


def _upsert(labels_sql: str) -> str:
    return (
        f"INSERT INTO {COUNTER_TABLE} (name, labels, value) VALUES (%s, {labels_sql}, %s) "
        f"ON CONFLICT (name, labels) DO UPDATE SET value = {COUNTER_TABLE}.value + excluded.value"
    )


def increment(name: str, labels: Mapping[str, str], by: int = 1) -> None:
    """Add ``by`` (>= 0) to the counter ``name`` with ``labels``, in one statement."""
    if by < 0:
        raise ValueError("a counter never goes down")
    if by == 0:
        return
    labels_sql = "%s::jsonb" if is_postgresql() else "%s"
    with connection.cursor() as cursor:
        cursor.execute(_upsert(labels_sql), [name, canonical_labels(labels), by])


def canonical_labels(labels: Mapping[str, str]) -> str:
    """Labels as stored: a JSON object with sorted keys (on SQLite the text is the key), each
    value cut to MAX_KIND_LENGTH characters: the labels are a unique index's key, and a kind
    of a thousand random CJK characters did not fit one (every failing statement failed)."""
    cut = {key: str(value)[:MAX_KIND_LENGTH] for key, value in labels.items()}
    return json.dumps(cut, sort_keys=True)


def counter_cte(actor_param: str = "%s") -> str:
    """A CTE of the failing statement: add each kind's count from ``failed`` to
    ``RUNS_FAILED`` (the actor is a parameter), so the counter commits with the failing."""
    return (
        f"counted AS (INSERT INTO {COUNTER_TABLE} (name, labels, value) "
        f"SELECT '{RUNS_FAILED}', "
        f"jsonb_build_object('kind', left(kind, {MAX_KIND_LENGTH}), 'actor', {actor_param}::text), "
        f"count(*) FROM failed GROUP BY left(kind, {MAX_KIND_LENGTH}) "
        f"ON CONFLICT (name, labels) DO UPDATE SET value = {COUNTER_TABLE}.value + excluded.value)"
    )


def read(name: str) -> dict[tuple[tuple[str, str], ...], int]:
    """Every series of counter ``name``: sorted (label, value) pairs -> count."""
    return {
        tuple(sorted(labels.items())): value
        for labels, value in Counter.objects.filter(name=name).values_list("labels", "value")
    }


def late_finish_counter_by_kind() -> dict[str, int]:
    """``tenderops_late_finishes_total{kind}``: runs that tenderops failed and a worker later
    set to ``success``, counted per kind when ``ticks.late_finish_tick`` notes them, through
    ``increment(LATE_FINISHES, {"kind": kind}, count)``."""
    return {dict(labels).get("kind", ""): value for labels, value in read(LATE_FINISHES).items()}
