"""Signs of life: what tenderops observes of every active run, each time it judges them.

A worker that is alive writes its run's ``progress`` and ``message`` (the frontend's progress
line) and changes its ``status`` when it picks the run up. One set-based statement records,
for every pending and running run, a fingerprint of those three columns, when tenderops first
saw the run and when it last saw the fingerprint change; observations of runs no longer
active go in the same statement. Only rows that changed are written, and only the active runs
are read (through the partial indexes on pending and running runs), so a quiet tick costs
little whatever the table's size. The stuck rule (``StuckPolicy``) reads these observations.

PostgreSQL's statement and the portable one (the SQLite demo) sit side by side here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from runs.maintenance.db import db_now, is_postgresql, now_sql
from runs.models import RunObservation, TenderRun, fingerprint


@dataclass(frozen=True)
class Observation:
    changed: int  # runs first seen or whose fingerprint changed
    forgotten: int  # observations of runs that are no longer active


def observe_active_runs() -> Observation:
    """Observe every active run now; return how many changed and how many were forgotten."""
    observe = _observe_postgresql if is_postgresql() else _observe_portable
    return observe()


def _active_fingerprints() -> tuple[str, list]:
    active = TenderRun.objects.active().annotate(fp=fingerprint()).values("id", "fp")
    return active.query.sql_with_params()


def _observe_postgresql() -> Observation:
    active_sql, active_params = _active_fingerprints()
    now, now_params = now_sql()
    table = RunObservation._meta.db_table
    # A run first seen has no observed change yet: its last sign of life is its start.
    # ON CONFLICT ... WHERE writes only a changed fingerprint, so a quiet tick writes nothing.
    sql = f"""
        WITH active AS MATERIALIZED ({active_sql}),
        seen AS (
            INSERT INTO {table} AS o (run_id, fingerprint, first_seen_at, last_change_at, changes)
            SELECT id, fp, {now}, NULL, 0 FROM active
            ON CONFLICT (run_id) DO UPDATE
            SET fingerprint = excluded.fingerprint, last_change_at = {now},
                changes = o.changes + 1
            WHERE o.fingerprint <> excluded.fingerprint
            RETURNING 1
        ),
        forgotten AS (
            DELETE FROM {table} AS o
            WHERE NOT EXISTS (SELECT 1 FROM active WHERE active.id = o.run_id)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM forgotten)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*active_params, *now_params, *now_params])
        changed, forgotten = cursor.fetchone()
    return Observation(changed=changed, forgotten=forgotten)


def _observe_portable() -> Observation:
    """The same, read and written by Django (the SQLite demo runs a few active runs)."""
    with transaction.atomic():
        now = db_now()
        active = dict(TenderRun.objects.active().annotate(fp=fingerprint()).values_list("id", "fp"))
        known = {o.run_id: o for o in RunObservation.objects.filter(run_id__in=list(active))}
        changed = [o for run_id, o in known.items() if o.fingerprint != active[run_id]]
        for observation in changed:
            observation.fingerprint = active[observation.run_id]
            observation.last_change_at = now
            observation.changes += 1
        RunObservation.objects.bulk_update(changed, ["fingerprint", "last_change_at", "changes"])
        new = [
            RunObservation(run_id=run_id, fingerprint=fp, first_seen_at=now)
            for run_id, fp in active.items()
            if run_id not in known
        ]
        RunObservation.objects.bulk_create(new)
        forgotten, _ = RunObservation.objects.exclude(run_id__in=list(active)).delete()
    return Observation(changed=len(changed) + len(new), forgotten=forgotten)
