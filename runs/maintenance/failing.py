"""Failing stuck runs: the audited cleanup (the operators' "mark failed" is ``selection``).

Which runs are stuck is ``TenderRun.objects.stuck(policy)``; how they are failed (one guarded
statement on PostgreSQL, its portable twin elsewhere) is ``failing_statements``.

The cleanup fails in batches, each its own transaction and its own audited action: a fleet
restart that leaves 100,000 runs stuck never holds one transaction (and its row locks) for
seconds, and a request that runs out of time keeps what it did. Batches follow
``started_at``, each starting where the last ended; each re-checks the guard on every
locked row, so exactly-once and no-overwrite hold across batches and across cleanups running
at once. The result lists at most ``LIST_LIMIT`` runs, with the full count.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from runs.adoption import ensure_shape
from runs.maintenance.db import (
    aware,
    commit_without_flush_wait,
    compiled,
    minutes_between,
)
from runs.maintenance.failing_statements import (
    AuditEntry,
    Candidates,
    FailedRow,
    fail_and_audit,
)
from runs.maintenance.heartbeat import beat, beat_when_none_stuck
from runs.maintenance.liveness import StuckCheck, observe_active_runs
from runs.maintenance.outcomes import CleanupResult, StuckRun
from runs.maintenance.policy import StuckPolicy, check_kinds
from runs.models import Actor, MaintenanceAction, TenderRun
from runs.vocabulary import RunStatus

# The most runs a cleanup's result lists (the API's ``stuck_runs``, the CLI's table); the
# counts are always complete.
LIST_LIMIT = 1_000
# Batches of the cleanup: the first is small; each next one is sized from the last one's pace
# to take about BATCH_TARGET_SECONDS, within [BATCH_MIN, BATCH_MAX], so that a slow or busy
# machine gets smaller batches and no transaction comes near a second.
BATCH_FIRST = 1_000
BATCH_MIN = 200
BATCH_MAX = 20_000
BATCH_TARGET_SECONDS = 0.25
# A cleanup starts no new batch after this long (under gunicorn's 30 s worker timeout); the
# rest is left to the next tick or call, and the result says so (``complete`` false).
CLEANUP_DEADLINE_SECONDS = 20.0


def stuck_runs_queryset(
    policy: StuckPolicy,
    kinds: Sequence[str] = (),
    run_ids: Sequence[str] | None = None,
    condition: Q | None = None,
) -> QuerySet[TenderRun]:
    """The stuck runs (``TenderRun.objects.stuck``: as the policy's rule judges them), of
    ``kinds``, among ``run_ids`` and meeting ``condition`` if given."""
    queryset = TenderRun.objects.stuck(policy)
    if kinds:
        queryset = queryset.filter(run_kind__in=list(kinds))
    if run_ids is not None:
        queryset = queryset.filter(pk__in=list(run_ids))
    if condition is not None:
        queryset = queryset.filter(condition)
    return queryset


def list_runs(queryset: QuerySet[TenderRun], limit: int | None = None) -> list[StuckRun]:
    """``queryset``'s stuck runs, oldest first (the first ``limit``), as results list them."""
    rows = queryset.annotate(db_now=Now()).order_by("started_at", "pk")
    fields = ("id", "project_id", "run_kind", "started_at", "last_sign_of_life", "db_now")
    values = rows.values(*fields, "fail_reason")
    return [
        StuckRun(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["run_kind"],
            started_at=row["started_at"],
            running_minutes=minutes_between(row["started_at"], row["db_now"]),
            reason=row["fail_reason"],
            silent_minutes=minutes_between(row["last_sign_of_life"], row["db_now"]),
        )
        for row in (values if limit is None else values[:limit])
    ]


def fail_stuck_runs(
    *,
    actor: Actor,
    username: str = "",
    timeout_minutes: int | None = None,
    kinds: Sequence[str] = (),
    condition: Q | None = None,
    dry_run: bool = False,
    heartbeat: str | None = None,
    list_limit: int | None = LIST_LIMIT,
    batch_size: int | None = None,
    deadline_seconds: float = CLEANUP_DEADLINE_SECONDS,
    questions: Mapping[str, tuple[str, tuple]] | None = None,
    alert: bool = False,
) -> CleanupResult:
    """Fail the runs that are stuck now; with ``condition`` (a confirmation's promise: the
    runs it listed, as listed), only those of them meeting it.

    Every active run is observed first (its signs of life), dry run or not: that writes
    only tenderops' own table. Then batches of stuck runs are failed, each its own guarded,
    audited transaction, while the last batch was full and ``deadline_seconds`` have not
    passed. ``heartbeat`` names a heartbeat to stamp in each batch's transaction (the
    monitor's). The result lists the first ``list_limit`` runs (None: all) and counts all.
    ``batch_size`` fixes the batches' size (tests); by default they adapt to the pace.
    ``questions`` (name: SQL and params) are asked on the observation's snapshot where it
    also checks for stuck runs (the monitor's tick); the result's ``answers`` say whether
    each found a row, and lack the ones not asked. ``alert``: each batch's action waits for
    an alert to tell it (``telling.tell_failed``: the monitor's).
    """
    policy = StuckPolicy.configured(timeout_minutes)
    kinds = check_kinds(kinds)
    idle_kinds = kinds_not_running(kinds, pending_too=policy.fail_pending_after_minutes is not None)

    def candidates() -> QuerySet[TenderRun]:
        return stuck_runs_queryset(policy, kinds, condition=condition)

    # The first batch's SQL depends on the policy and the kinds only, without a condition.
    first_batch_key = None
    if condition is None:
        first_batch_key = (json.dumps(policy.as_dict(), sort_keys=True), tuple(kinds))
    check = None
    if first_batch_key is not None and not dry_run:
        check = _stuck_check(candidates, first_batch_key, heartbeat, questions or {})
    observation = observe_active_runs(check)
    answers = observation.answers
    if observation.any_stuck is False:
        # Nothing to fail (and the heartbeat stamped by the observation's statement): the
        # quiet tick is one statement (the failing statement cost it 1.5 ms to find none).
        return CleanupResult(
            stuck_runs=[],
            fixed_count=0,
            dry_run=False,
            policy=policy,
            found_count=0,
            answers=answers,
            kinds_not_running=idle_kinds,
        )

    if dry_run:
        # A failing checks the table's shape as it fails (failing_statements); a listing
        # here, and a quiet tick stays one statement.
        ensure_shape(connection)
        probe = None if list_limit is None else list_limit + 1
        found = list_runs(candidates(), probe)
        total = None
        if list_limit is not None and len(found) > list_limit:
            found, total = found[:list_limit], candidates().count()
        return CleanupResult(
            stuck_runs=found,
            fixed_count=0,
            dry_run=True,
            policy=policy,
            found_count=total,
            kinds_not_running=idle_kinds,
        )
    audit = AuditEntry(
        MaintenanceAction.Kind.FAIL_STUCK,
        actor,
        username,
        settings.TENDEROPS_STUCK_MESSAGE,
        {"policy": policy.as_dict(), "kinds": kinds},
        heartbeat,
        alert,
    )
    listed: list[StuckRun] = []
    counts_by_kind: Counter[str] = Counter()  # of every run failed, listed or not
    actions: list[int] = []  # a cleanup in several batches writes an action each
    fixed = batches = 0
    longest = 0.0
    size = batch_size or BATCH_FIRST
    after: datetime | None = None
    began = time.monotonic()
    while True:
        # From the last batch's latest start on: runs it failed no longer match, and a run
        # of the same start that it left is taken by this one.
        if after is None:
            batch, key = candidates, first_batch_key
        else:
            batch, key = partial(_started_from, candidates, after), None
        started = time.monotonic()
        rows = _fail_batch(batch, audit, limit=size, cache_key=key)
        elapsed = time.monotonic() - started
        longest = max(longest, elapsed)
        batches += 1
        fixed += len(rows)
        counts_by_kind.update(row.kind for row in rows)
        if rows:
            actions.append(rows[0].action_id)
            if len(actions) == 1:
                audit = audit.continuing(actions[0])
        if list_limit is None or len(listed) < list_limit:
            listed.extend(stuck_runs_of(rows))
        full = len(rows) >= size
        if not full:
            break
        after = max(aware(row.started_at) for row in rows)
        if time.monotonic() - began >= deadline_seconds:
            break
        if batch_size is None:
            size = _next_batch_size(size, elapsed)
    if heartbeat and batches > 1:
        beat(heartbeat, {"fixed_count": fixed, "batches": batches})
    listed.sort(key=lambda run: (run.started_at, run.id))
    return CleanupResult(
        stuck_runs=listed if list_limit is None else listed[:list_limit],
        fixed_count=fixed,
        dry_run=False,
        policy=policy,
        found_count=fixed,
        complete=not full,
        batches=batches,
        longest_batch_seconds=longest,
        action_ids=tuple(actions),
        answers=answers,
        kinds_not_running=idle_kinds,
        counts_by_kind=dict(counts_by_kind),
    )


def kinds_not_running(kinds: Sequence[str], *, pending_too: bool = False) -> list[str]:
    """Those of ``kinds`` that no run is running with (kinds match exactly): a cleanup of
    them finds nothing, which for a misspelt kind must not read as an all-clear. With
    ``pending_too`` (pending runs can be stuck: TENDEROPS_FAIL_PENDING_AFTER_MINUTES), a
    pending run counts too. Reads only the active runs (partial indexes)."""
    if not kinds:
        return []
    statuses = [RunStatus.RUNNING, RunStatus.PENDING] if pending_too else [RunStatus.RUNNING]
    active = TenderRun.objects.filter(status__in=statuses).with_run_kind()
    seen = set(active.filter(run_kind__in=kinds).values_list("run_kind", flat=True).distinct())
    return [kind for kind in kinds if kind not in seen]


def _stuck_check(
    candidates: Callable[[], QuerySet[TenderRun]],
    key: Hashable,
    heartbeat: str | None,
    questions: Mapping[str, tuple[str, tuple]],
) -> StuckCheck:
    """Whether any run is stuck, asked of the observation with ``questions``; when none is,
    it stamps ``heartbeat`` as a batch that failed nothing would."""
    found = compiled(("any-stuck", key), lambda: candidates().values("pk"))
    when_none = beat_when_none_stuck(heartbeat) if heartbeat else None
    return StuckCheck(found, when_none, tuple(questions.items()))


def _next_batch_size(size: int, elapsed_seconds: float) -> int:
    """The size that the last batch's pace says takes BATCH_TARGET_SECONDS, at most doubling."""
    paced = size * BATCH_TARGET_SECONDS / max(elapsed_seconds, 1e-3)
    return int(max(BATCH_MIN, min(BATCH_MAX, 2 * size, paced)))


def _started_from(
    candidates: Callable[[], QuerySet[TenderRun]], after: datetime
) -> QuerySet[TenderRun]:
    return candidates().filter(started_at__gte=after)


def _fail_batch(
    candidates: Candidates, audit: AuditEntry, *, limit: int, cache_key: Hashable | None
) -> list[FailedRow]:
    """One batch: the first ``limit`` candidates in started_at order, in a transaction
    of its own (inside a caller's transaction, part of it). A batch of its own that failed
    nothing wrote only the monitor's heartbeat: its commit does not wait for the WAL flush
    (about 1 ms of a quiet tick; a crash could only lose that stamp)."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic(savepoint=False):
        rows = fail_and_audit(
            candidates,
            error=settings.TENDEROPS_STUCK_ERROR,
            audit=audit,
            limit=limit,
            cache_key=cache_key,
        )
        if own_transaction and not rows:
            commit_without_flush_wait()
        return rows


def stuck_runs_of(rows: list[FailedRow]) -> list[StuckRun]:
    """The runs a failing statement returned, as results list them."""
    return [
        StuckRun(
            id=row.id,
            project_id=row.project_id,
            kind=row.kind,
            started_at=aware(row.started_at),
            running_minutes=row.running_minutes,
            reason=row.reason,
            silent_minutes=row.silent_minutes,
        )
        for row in rows
    ]


class CleanupBatches(NamedTuple):
    action_ids: list[int]  # the first action, then its later batches', in order
    failed_count: int  # the runs they failed, all together


def cleanup_batches(first: int) -> CleanupBatches:
    """Action ``first`` and the actions of its cleanup's later batches (each names the first:
    ``AuditEntry.continuing``), with the runs they failed in all."""
    continued = {f"parameters__{MaintenanceAction.CONTINUES}": first}
    actions = MaintenanceAction.objects.filter(Q(pk=first) | Q(pk__gt=first, **continued))
    rows = [
        (pk, count)
        for pk, count, parameters in actions.order_by("pk").values_list(
            "pk", "affected_count", "parameters"
        )
        # JSON finds 1.0 (and, in SQLite, true) equal to 1: only an int, as written, counts.
        if pk == first or type(parameters.get(MaintenanceAction.CONTINUES)) is int
    ]
    return CleanupBatches([pk for pk, _n in rows], sum(n for _pk, n in rows))
