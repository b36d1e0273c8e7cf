"""One prune of 1 M expired runs, batch by batch, then the raw DELETE on the same setup.

Prints each batch's rows, duration and wall-clock end (UTC), to set next to the server log
(checkpoints) or EXPLAIN output. Run after `make bench` against one of its databases:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tenderops_bench_10m \
        python bench/prune_batches.py [rounds]
"""

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.scenario import PRUNE_DAYS, RAW_DELETE  # noqa: E402
from bench.timing import Stopwatch, timed  # noqa: E402
from bench.worker import prepare_expired_runs  # noqa: E402
from runs.maintenance import PruneResult, prune_runs  # noqa: E402
from runs.models import Actor  # noqa: E402


def execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def wall_clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def prune_batch_by_batch() -> None:
    stopwatch, done = Stopwatch(), [0]

    def report(result: PruneResult) -> None:
        ms, rows = stopwatch.lap(), result.total - done[0]
        print(f"  batch {result.batches:3}: {rows:7,} rows {ms:6.0f} ms, ended {wall_clock()}")
        done[0] = result.total

    print(f"prune from {wall_clock()}")
    elapsed, _ = timed(lambda: prune_runs(actor=Actor.CLI, on_batch=report, **PRUNE_DAYS))
    print(f"prune: {elapsed:.0f} ms")


def main(rounds: int) -> None:
    for round_ in range(rounds):
        prepare_expired_runs(execute, f"p{round_}")
        prune_batch_by_batch()
        prepare_expired_runs(execute, f"r{round_}")
        elapsed, _ = timed(lambda: execute(RAW_DELETE))
        print(f"raw DELETE: {elapsed:.0f} ms, ended {wall_clock()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
