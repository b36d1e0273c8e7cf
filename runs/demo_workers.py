"""Stand-in workers for the demo, so that it shows what the signs-of-life rule is for.

The demo's seeded live runs would otherwise never write again, and tenderops would rightly
fail them all once their kind's timeout passed. Here, as the tender backend's workers do,
each live run's worker writes its progress now and then and sets ``success`` at the end; a
finished worker picks up the oldest pending run. One worker has died: its run goes silent and
the monitor fails it when its silence passes the timeout, while the others, however long they
run, are left alone. Only the demo's own seeded runs (by their ids) are ever written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import transaction
from django.db.models.functions import Now

from runs.demo_data import KINDS, seeded_run_ids
from runs.models import TenderRun
from runs.vocabulary import RunStatus

# The demo seeds with --random-seed 1 (the default without --append) and at most this many
# runs per group are looked for.
DEMO_SEED = 1
MOST_PER_GROUP = 50
# The first seeded live run's worker died: it never writes again.
DEAD_WORKER_RUNS = 1
# About 0.02 a round of 20 s: a picked-up run takes about 17 minutes, longer than the
# default 10-minute timeout, and is left alone because it keeps writing.
STEP_PROGRESS = (0.01, 0.03)
RUNNING_MESSAGES = {kind: message for _run_type, kind, _minutes, message in KINDS}
RUNNING_MESSAGES |= {run_type: message for run_type, _kind, _minutes, message in KINDS}


@dataclass(frozen=True)
class WorkDone:
    progressed: int  # runs whose progress was written
    finished: int  # runs set to success
    picked_up: int  # pending runs a worker started
    silent: int = 0  # runs of dead workers still running (tenderops has not failed them yet)


def live_ids() -> list[str]:
    return seeded_run_ids("live", MOST_PER_GROUP, DEMO_SEED)


def pending_ids() -> list[str]:
    return seeded_run_ids(RunStatus.PENDING.value, MOST_PER_GROUP, DEMO_SEED)


def dead_ids() -> list[str]:
    return live_ids()[:DEAD_WORKER_RUNS]


def work_once(rng: random.Random) -> WorkDone:
    """One round of every live worker: progress written, finished runs set to success, and
    as many pending runs picked up as finished. A run no longer running (tenderops failed it,
    say) is never written: each write is guarded by the status it expects."""
    dead = set(dead_ids())
    progressed = finished = 0
    with transaction.atomic():
        running = TenderRun.objects.filter(pk__in=live_ids() + pending_ids())
        running = running.filter(status=RunStatus.RUNNING).exclude(pk__in=dead)
        for run_id, progress in running.order_by("pk").values_list("pk", "progress"):
            done = _write_progress(run_id, (progress or 0.0) + rng.uniform(*STEP_PROGRESS))
            progressed += 1
            finished += done
        picked_up = _pick_up(finished)
        silent = TenderRun.objects.filter(pk__in=dead, status=RunStatus.RUNNING).count()
    return WorkDone(progressed, finished, picked_up, silent)


def _write_progress(run_id: str, progress: float) -> bool:
    """Write ``progress``, or finish the run once it reaches 1; return whether it finished."""
    run = TenderRun.objects.filter(pk=run_id, status=RunStatus.RUNNING)
    if progress < 1.0:
        run.update(progress=round(progress, 2))
        return False
    run.update(status=RunStatus.SUCCESS, progress=1.0, finished_at=Now(), message="完成")
    return True


def _pick_up(count: int) -> int:
    waiting = TenderRun.objects.filter(pk__in=pending_ids(), status=RunStatus.PENDING)
    picked = 0
    for run in waiting.order_by("started_at", "pk")[:count]:
        message = RUNNING_MESSAGES.get(run.kind or run.run_type or "", "处理中...")
        picked += TenderRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
            status=RunStatus.RUNNING, progress=0.0, message=message
        )
    return picked
