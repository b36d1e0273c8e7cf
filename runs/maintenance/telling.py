"""Telling people what the monitor failed: its digest, and the failings a stopped tick left
untold.

Each batch of the monitor's cleanup inserts its audit action waiting for an alert
(``MaintenanceAction.alert_pending``, in the batch's own statement). The tick then claims the
waiting actions and raises one ``monitor_failed`` digest for them, in one transaction: a tick
stopped between its batches and its digest (killed, or the digest failed) leaves its actions
waiting, and the next tick tells them with its own. A tick tells the actions it claims (locked
and marked told in one statement, others' locks skipped): two ticks never tell a run twice.
Failings whose kinds were all told within the alert cooldown stay waiting until it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q, QuerySet, Window
from django.db.models.functions import Now, RowNumber

from runs.maintenance.alerts import AlertEvent, gate_kinds, raise_digest
from runs.maintenance.db import is_postgresql
from runs.maintenance.outcomes import CleanupResult
from runs.maintenance.policy import StuckPolicy
from runs.models import AlertGate, FailedRunRecord, MaintenanceAction, TenderRun
from runs.vocabulary import FailReason

# A digest lists at most this many run ids per kind (oldest first).
DIGEST_IDS = 5
# A digest's link lists the runs of at most this many cleanups (``?action=1,2``): ids of up to
# nine digits stay within a parameter's 2,000 characters.
LINKED_CLEANUPS = 100


def tell_failed(result: CleanupResult) -> None:
    """Raise the ``monitor_failed`` digest of the runs this tick failed and of those that
    earlier ticks failed and never told, and mark their actions told, in one transaction. A
    tick whose own actions another took over tells only the rest."""
    with transaction.atomic():
        untold = _claim_untold()
        if not untold:
            return
        own = set(result.action_ids)
        if own and own <= untold:
            by_kind, facts = failed_digest(result)
        else:
            own, by_kind, facts = set(), {}, {"total": 0, "action_id": None, "rule": None}
        earlier = sorted(untold - own)
        if earlier:
            _add_earlier(by_kind, facts, earlier, result.policy)
        if own and any(not entry["ids"] for entry in by_kind.values()):
            _add_first_ids(by_kind, sorted(own))  # kinds past the tick's first listed runs
        if facts["total"] and raise_digest(AlertEvent.MONITOR_FAILED, by_kind, facts) is None:
            # Every kind was told within its cooldown: the failings wait for its end and are
            # told then, with those since (a fleet failed over several ticks was told only
            # its first tick's runs). No tick tries before: each rebuilt the whole digest.
            due = cooldown_end(AlertEvent.MONITOR_FAILED, by_kind)
            waiting = MaintenanceAction.objects.filter(pk__in=untold)
            waiting.update(alert_pending=True, alert_due_at=due)


def untold_actions() -> QuerySet[MaintenanceAction]:
    """The actions a tick may tell now: pending, and not waiting for a cooldown's end."""
    due = Q(alert_due_at__isnull=True) | Q(alert_due_at__lte=Now())
    return MaintenanceAction.objects.filter(due, alert_pending=True).values("pk")


def _claim_untold() -> set[int]:
    """Mark told, in the caller's transaction, the untold actions no other tick is telling,
    and return them: undone with the digest if it fails. One statement on PostgreSQL."""
    if not is_postgresql():
        untold = set(untold_actions().values_list("pk", flat=True))
        MaintenanceAction.objects.filter(pk__in=untold).update(
            alert_pending=False, alert_due_at=None
        )
        return untold
    table = MaintenanceAction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET alert_pending = false, alert_due_at = NULL WHERE id IN ("
            f"SELECT id FROM {table} WHERE alert_pending AND (alert_due_at IS NULL "
            "OR alert_due_at <= statement_timestamp()) FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        return {row[0] for row in cursor.fetchall()}


def cooldown_end(event: AlertEvent, by_kind: dict) -> datetime | None:
    """When the first of ``by_kind``'s cooldowns for ``event`` ends (a kind then passes the
    gate again)."""
    told = AlertGate.objects.filter(event=event, kind__in=gate_kinds(by_kind))
    first = told.aggregate(first=Min("last_raised_at"))["first"]
    cooldown = timedelta(minutes=settings.TENDEROPS_ALERT_COOLDOWN_MINUTES)
    return None if first is None else first + cooldown


def _add_earlier(by_kind: dict, facts: dict, actions: list[int], policy: StuckPolicy) -> None:
    """Add to a digest the runs that ``actions`` failed (those still in the table): counted
    per kind, their first ids (oldest first) before this tick's own, their cleanups linked
    with this tick's, and the rule that failed them all."""
    records = FailedRunRecord.objects.filter(action_id__in=actions)
    runs = _runs_failed_by(actions)
    counts = dict(runs.values_list("run_kind").annotate(n=Count("pk")))
    ids = first_ids(runs)
    for kind, count in counts.items():
        entry = by_kind.setdefault(
            kind, {"count": 0, "ids": [], "timeout_minutes": policy.minutes_for(kind)}
        )
        entry["count"] += count
        entry["ids"] = (ids.get(kind, []) + entry["ids"])[:DIGEST_IDS]
    facts["total"] += sum(counts.values())
    own = facts["action_id"]
    earlier = sorted(_cleanups(actions) - {own})
    # The link lists the runs of the tick's own cleanup and the earliest others (a crash
    # loop can leave more than a link holds); a digest that links fewer says how many.
    linked = sorted(([own] if own else []) + earlier[: LINKED_CLEANUPS - (1 if own else 0)])
    facts["action_id"], facts["action_ids"] = linked[0], linked
    facts["cleanups"] = len(earlier) + (1 if own else 0)
    reasons = set(records.values_list("reason", flat=True).distinct())
    rule = "max_runtime" if reasons == {FailReason.MAX_RUNTIME} else str(policy.rule)
    facts["rule"] = rule if facts["rule"] in (None, rule) else str(policy.rule)


def _add_first_ids(by_kind: dict, actions: list[int]) -> None:
    """Give the kinds of a digest that list no run the first ids ``actions`` failed."""
    runs = _runs_failed_by(actions).filter(
        run_kind__in=[kind for kind, entry in by_kind.items() if not entry["ids"]]
    )
    for kind, ids in first_ids(runs).items():
        by_kind[kind]["ids"] = ids


def _runs_failed_by(actions: list[int]) -> QuerySet[TenderRun]:
    records = FailedRunRecord.objects.run_ids_of(actions)
    return TenderRun.objects.with_run_kind().filter(pk__in=records).order_by()


def first_ids(runs: QuerySet[TenderRun]) -> dict[str, list[str]]:
    """Per kind, the ids of the first DIGEST_IDS of ``runs`` (oldest first), in SQL."""
    order = [F("started_at").asc(), F("pk").asc()]
    ranked = runs.annotate(rank=Window(RowNumber(), partition_by=[F("run_kind")], order_by=order))
    first = ranked.filter(rank__lte=DIGEST_IDS).order_by("run_kind", "rank")
    ids: dict[str, list[str]] = {}
    for kind, run_id in first.values_list("run_kind", "pk"):
        ids.setdefault(kind, []).append(run_id)
    return ids


def _cleanups(actions: list[int]) -> set[int]:
    """The cleanups ``actions`` belong to: each batch's first action."""
    firsts = set()
    for pk, parameters in MaintenanceAction.objects.filter(pk__in=actions).values_list(
        "pk", "parameters"
    ):
        first = (parameters or {}).get(MaintenanceAction.CONTINUES)
        firsts.add(first if type(first) is int else pk)
    return firsts


def failed_digest(result: CleanupResult) -> tuple[dict, dict]:
    """What the ``monitor_failed`` (or ``stuck_not_failed``) digest says: per kind, how
    many, the first ids and the timeout; overall, how many, the audit's action and the rule
    that fired."""
    by_kind = runs_by_kind(
        ((run.kind, run.id) for run in result.stuck_runs),
        lambda kind: {"timeout_minutes": result.policy.minutes_for(kind)},
    )
    # The list stops at failing.LIST_LIMIT; a fleet's tick counts every run it failed.
    for kind, count in result.counts_by_kind.items():
        by_kind.setdefault(kind, {"ids": [], "timeout_minutes": result.policy.minutes_for(kind)})
        by_kind[kind]["count"] = count
    reasons = {run.reason for run in result.stuck_runs}
    rule = "max_runtime" if reasons == {FailReason.MAX_RUNTIME} else str(result.policy.rule)
    total = result.total
    return by_kind, {"total": total, "action_id": result.action_id, "rule": rule}


def runs_by_kind(runs: Iterable[tuple[str, str]], extra: Callable[[str], dict]) -> dict:
    by_kind: dict[str, dict] = {}
    for kind, run_id in runs:
        entry = by_kind.setdefault(kind, {"count": 0, "ids": [], **extra(kind)})
        entry["count"] += 1
        if len(entry["ids"]) < DIGEST_IDS:
            entry["ids"].append(run_id)
    return by_kind
