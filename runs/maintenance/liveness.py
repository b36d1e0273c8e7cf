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

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min, QuerySet

from runs.limits import STATS_WINDOWS
from runs.maintenance.db import (
    LOCK_WAIT_SETTING,
    compiled,
    db_now,
    execute_after,
    is_postgresql,
    local_settings,
    now_sql,
)
from runs.maintenance.late_finishes import noted_late_finishes_by_kind_and_window
from runs.maintenance.policy import StuckPolicy
from runs.models import (
    FailedRunRecord,
    RunObservation,
    TenderRun,
    fingerprint,
)
from runs.vocabulary import FailReason, RunStatus, StuckRule


@dataclass(frozen=True)
class Observation:
    changed: int  # runs first seen or whose fingerprint changed
    forgotten: int  # observations of runs that are no longer active
    skipped: bool = False  # another monitor was observing at that very moment
    any_stuck: bool | None = None  # what a StuckCheck found; None: not asked
    answers: dict[str, bool] = field(default_factory=dict)  # its questions, answered


@dataclass(frozen=True)
class StuckCheck:
    """What the cleanup asks of the observation, in the same statement: whether
    ``candidates`` (compiled SQL and params) finds any run, and, when it finds none,
    ``when_none``: a data-modifying statement to run then, reading the CTE ``stuck``
    (its column ``found``). A quiet monitor tick is then this one statement."""

    candidates: tuple[str, tuple]
    when_none: tuple[str, tuple] | None = None
    # More yes-or-no questions on the same snapshot, by name: whether each SQL finds a row.
    questions: tuple[tuple[str, tuple[str, tuple]], ...] = ()


# The transaction-level advisory lock that the observers take in turn (an arbitrary key),
# and whether this transaction got it, as its prelude recorded.
OBSERVER_LOCK = 7_451_900_001
_OBSERVING = "current_setting('tenderops.observing')::boolean"


def observe_active_runs(check: StuckCheck | None = None) -> Observation:
    """Observe every active run now; return how many changed and how many were forgotten.
    With ``check`` (PostgreSQL), also whether any run is stuck, judged on the same snapshot:
    a run that changed since the last observation is not stuck by its old observation
    either, so the answer is the one the new observation gives."""
    if is_postgresql():
        return _observe_postgresql(check)
    return _observe_portable()


def _active_fingerprints() -> tuple[str, tuple]:
    return compiled(
        "active-fingerprints",
        lambda: (
            TenderRun.objects.active()
            .annotate(fp=fingerprint())
            .values("id", "fp", "status", "started_at")
        ),
    )


def _observe_postgresql(check: StuckCheck | None) -> Observation:
    active_sql, active_params = _active_fingerprints()
    check_sql, check_params = _stuck_check_sql(check)
    questions = check.questions if check else ()
    asked_sql = "".join(f", EXISTS ({sql})" for _name, (sql, _params) in questions)
    asked_params = [param for _name, (_sql, params) in questions for param in params]
    now, now_params = now_sql()
    table = RunObservation._meta.db_table
    records = FailedRunRecord._meta.db_table
    # One hash full join of the active runs with the observations keeps only what differs:
    # runs first seen (no observation), runs whose fingerprint changed, and observations of
    # runs no longer active. A quiet tick's differences are none, and the writes below read
    # nothing else (two joins, one for the new and changed runs and an anti-join for the
    # forgotten, cost a quiet observation 4.1 ms with 2,280 active runs at 1 M).
    # A run first seen has no observed change yet: its last sign of life is its start. Unless
    # tenderops failed it before (its audit says so): then someone has just made it active
    # again, a change seen now and a new pick-up (the failing statement forgot its old
    # observation; judged by its start, it was failed again at first sight).
    # Runs seen before and changed since are updated in place (a HOT update: the table keeps
    # room on its pages, migration 0008), new ones inserted; an upsert would cost each changed
    # row a speculative insertion first (2,000 changed runs: 37 ms against 12, EXPLAIN
    # ANALYZE at 10 M), and one that meets an unchanged row locks it.
    sql = f"""
        WITH differences AS MATERIALIZED (
            SELECT active.id, active.fp, active.status, active.started_at, o.run_id AS observed_id
            FROM ({active_sql}) AS active FULL JOIN {table} AS o ON o.run_id = active.id
            WHERE (active.id IS NULL OR o.run_id IS NULL OR o.fingerprint <> active.fp)
              AND {_OBSERVING}
        ),
        updated AS (
            UPDATE {table} AS o
            SET fingerprint = d.fp, last_change_at = {now}, changes = o.changes + 1,
                running_since = COALESCE(o.running_since, CASE WHEN d.status = %s THEN {now} END)
            FROM differences AS d
            WHERE d.id IS NOT NULL AND d.observed_id IS NOT NULL AND o.run_id = d.observed_id
            RETURNING 1
        ),
        inserted AS (
            INSERT INTO {table}
                (run_id, fingerprint, first_seen_at, last_change_at, changes, running_since)
            SELECT id, fp, {now}, CASE WHEN revived THEN {now} END, revived::int,
                   CASE WHEN status = %s THEN CASE WHEN revived THEN {now} ELSE started_at END END
            FROM (SELECT d.*, EXISTS (SELECT FROM {records} AS r WHERE r.run_id = d.id) AS revived
                  FROM differences AS d WHERE d.observed_id IS NULL) AS new
            ON CONFLICT (run_id) DO NOTHING
            RETURNING 1
        ),
        forgotten AS (
            DELETE FROM {table} AS o USING differences AS d
            WHERE d.id IS NULL AND o.run_id = d.observed_id
            RETURNING 1
        ){check_sql}
        SELECT {_OBSERVING}, (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted),
               (SELECT count(*) FROM forgotten), {"(SELECT found FROM stuck)" if check else "NULL"}
               {asked_sql}
    """
    # One observer at a time: two monitors upserting the same rows in different orders would
    # deadlock (seen in tests/test_races.py). One that finds another observing skips: that
    # observation is as fresh, and the failing statement's fingerprint guard covers the gap.
    # The lock is taken by the prelude, sent with the statement in one round trip (one
    # transaction; db.execute_after), and the statement does nothing when it was not got.
    # The prelude's settings hold for this transaction. No JIT: the statement reads only
    # the active runs, but the planner's estimate of them can be stale by a fleet's worth,
    # and compiling then cost 11 ms of a 31 ms observation (EXPLAIN ANALYZE, 2,000 active
    # runs at 1 M). No merge join: the full join would sort run ids in the database's
    # collation (6 ms of 8 where a hash join costs 1). Nested loops stay allowed: a full
    # join cannot be one, and the few differences and the stuck check probe the primary
    # keys (the check with nested loops off cost 1.2 ms, a hash of every observation, against
    # 0.05 ms). No wait for the commit's WAL flush (about 1 ms): a crash can only lose the
    # last observations, and the next one then sees those changes again, later, which makes
    # runs look alive longer and never fails one sooner; a failing transaction's own commit
    # flushes them anyway. A lock on the runs' table held by another session (an ALTER
    # TABLE) is waited for at most LOCK_WAIT: a tick then fails, is logged and is tried by
    # the next one, instead of holding a cluster worker for as long as the lock lasts.
    prelude = (
        "SELECT set_config('tenderops.observing', pg_try_advisory_xact_lock(%s)::text, true), "
        "set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true), "
        f"set_config('synchronous_commit', 'off', true), {LOCK_WAIT_SETTING}"
    )
    running = RunStatus.RUNNING
    params = [OBSERVER_LOCK, *active_params, *now_params, running, *now_params]
    params += [*now_params, *now_params, running, *now_params]
    with connection.cursor() as cursor:
        execute_after(cursor, prelude, sql, [*params, *check_params, *asked_params])
        observing, changed, forgotten, any_stuck, *answers = cursor.fetchone()
    if not observing:
        return Observation(changed=0, forgotten=0, skipped=True)
    named = {name: bool(answer) for (name, _q), answer in zip(questions, answers, strict=True)}
    return Observation(changed=changed, forgotten=forgotten, any_stuck=any_stuck, answers=named)


def _stuck_check_sql(check: StuckCheck | None) -> tuple[str, list]:
    """The CTEs of ``check``: ``stuck`` (MATERIALIZED, so it runs once) and ``when_none``."""
    if check is None:
        return "", []
    candidates, params = check.candidates
    found = f"SELECT EXISTS ({candidates}) AS found WHERE {_OBSERVING}"
    sql = f",\n        stuck AS MATERIALIZED ({found})"
    params = list(params)
    if check.when_none is not None:
        when_none, when_none_params = check.when_none
        sql += f",\n        when_none AS ({when_none})"
        params += when_none_params
    return sql, params


def _observe_portable() -> Observation:
    """The same, read and written by Django (the SQLite demo runs a few active runs)."""
    with transaction.atomic():
        now = db_now()
        active = {
            run["id"]: run
            for run in TenderRun.objects.active()
            .annotate(fp=fingerprint())
            .values("id", "fp", "status", "started_at")
        }
        known = {o.run_id: o for o in RunObservation.objects.filter(run_id__in=list(active))}
        changed = [o for run_id, o in known.items() if o.fingerprint != active[run_id]["fp"]]
        for observation in changed:
            run = active[observation.run_id]
            observation.fingerprint = run["fp"]
            observation.last_change_at = now
            observation.changes += 1
            if observation.running_since is None and run["status"] == RunStatus.RUNNING:
                observation.running_since = now
        RunObservation.objects.bulk_update(
            changed, ["fingerprint", "last_change_at", "changes", "running_since"]
        )
        unseen = [run_id for run_id in active if run_id not in known]
        revived = set(
            FailedRunRecord.objects.filter(run_id__in=unseen).values_list("run_id", flat=True)
        )
        new = [_first_sight(run_id, active[run_id], now, run_id in revived) for run_id in unseen]
        RunObservation.objects.bulk_create(new)
        forgotten, _ = RunObservation.objects.exclude(run_id__in=list(active)).delete()
    return Observation(changed=len(changed) + len(new), forgotten=forgotten)


def _first_sight(run_id: str, run: dict, now: datetime, revived: bool) -> RunObservation:
    """A run's first observation; ``revived``: tenderops failed it before (as above)."""
    started = now if revived else run["started_at"]
    return RunObservation(
        run_id=run_id,
        fingerprint=run["fp"],
        first_seen_at=now,
        last_change_at=now if revived else None,
        changes=int(revived),
        running_since=started if run["status"] == RunStatus.RUNNING else None,
    )


def vacuum_observations() -> bool:
    """VACUUM the observation table (PostgreSQL, outside a transaction): every tick leaves a
    dead row version per changed run, and a database whose autovacuum is off or behind would
    let them pile up, each observation reading them all (seen here: 873 pages for 2,080
    rows, a quiet observation from 4 ms to 12 ms). After a fleet-wide crash the table held
    100,000 rows for a while: VACUUM keeps its file that large, so when it is far larger than
    its rows need it is rewritten (VACUUM FULL: a moment's exclusive lock on a small table;
    seen here: 243 MB for 30 rows, a tick of 300 ms). It runs every few minutes, off the
    tick's path (``ticks.late_finish_tick``). False: not run."""
    if not is_postgresql() or connection.in_atomic_block:
        return False
    table = RunObservation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {table}")
        cursor.execute("SELECT relpages, reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        pages, rows = cursor.fetchone()
        if pages > max(OBSERVATION_SLACK_PAGES, 4 * max(rows, 0) / ROWS_PER_PAGE):
            cursor.execute(f"VACUUM FULL {table}")
    return True


# The observation table is rewritten when it holds over 4 times the pages its rows need
# (about ROWS_PER_PAGE rows a page at fillfactor 50) and more than this many pages.
OBSERVATION_SLACK_PAGES = 1_000
ROWS_PER_PAGE = 30


# --- what the observations say -----------------------------------------------------------


def silence_policy(policy: StuckPolicy) -> StuckPolicy:
    """``policy`` judging by silence whatever the configured rule: what *silent* means."""
    return replace(policy, rule=StuckRule.SILENCE, fail_pending_after_minutes=None)


def silent_runs(policy: StuckPolicy | None = None) -> QuerySet[TenderRun]:
    """Running runs silent past their kind's timeout (stuck by silence, failed or not yet)."""
    judge = silence_policy(policy or StuckPolicy.configured())
    return TenderRun.objects.stuck(judge).filter(fail_reason=FailReason.SILENT)


def over_max_runtime() -> QuerySet[TenderRun]:
    """Running runs picked up longer ago than TENDEROPS_MAX_RUN_MINUTES (the rule's part)."""
    running = TenderRun.objects.running().plausible().with_liveness()
    return running.filter(StuckPolicy.configured().over_max_runtime())


def waiting_runs() -> QuerySet[TenderRun]:
    """Pending runs silent longer than TENDEROPS_PENDING_ALERT_MINUTES."""
    return TenderRun.objects.waiting(settings.TENDEROPS_PENDING_ALERT_MINUTES)


def oldest_silence_seconds() -> float | None:
    """The longest any active run has been silent, or None when none is active."""
    oldest = (
        TenderRun.objects.active()
        .plausible()
        .with_liveness()
        .aggregate(oldest=Min("last_sign_of_life"))["oldest"]
    )
    return None if oldest is None else (db_now() - oldest).total_seconds()


def stuck_from(run_id: str) -> datetime | None:
    """When the configured rule calls the run stuck if it writes nothing meanwhile (for its
    page); None for a finished run, a pending one the rule never fails, or an impossible
    start (never failed)."""
    row = (
        TenderRun.objects.with_run_kind()
        .with_liveness()
        .plausible()
        .filter(pk=run_id)
        .values_list("run_kind", "status", "started_at", "last_sign_of_life", "running_from")
        .first()
    )
    if row is None or row[3] is None:
        return None
    try:
        return StuckPolicy.configured().stuck_from(*row)
    except OverflowError:  # a sign of life near the year 9999: no time after it exists
        return None


@dataclass(frozen=True)
class KindLiveness:
    kind: str
    silent: int = 0
    waiting: int = 0
    late: dict[str, int] = field(default_factory=dict)  # late finishes per STATS_WINDOWS name


def liveness_by_kind() -> dict[str, KindLiveness]:
    """Per kind: runs silent past their timeout, runs waiting, late finishes per window."""
    counts: dict[str, dict] = {}
    for name, queryset in (("silent", silent_runs()), ("waiting", waiting_runs())):
        for kind, total in queryset.order_by().values_list("run_kind").annotate(n=Count("pk")):
            counts.setdefault(kind, {})[name] = total
    # No JIT: the planner prices the noted records by a stale estimate (300,000 for none)
    # and compiled the query for 295 ms of its 328 (EXPLAIN ANALYZE at 10 M).
    with local_settings(jit="off"):
        late_rows = list(noted_late_finishes_by_kind_and_window())
    for row in late_rows:
        late = {name: row[f"in_{name}"] for name in STATS_WINDOWS if row[f"in_{name}"]}
        if late:
            counts.setdefault(row["kind"], {})["late"] = late
    return {kind: KindLiveness(kind=kind, **values) for kind, values in sorted(counts.items())}
