"""Where a monitor tick's time goes: each statement's and commit's median, on a seeded database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tenderops_bench_10m \\
        .venv/bin/python bench/tick_parts.py quiet --ticks 21 --cold

The figure is set up as bench/worker.py sets it, on a database `make bench` (or
`bench/run.py --prepare-only`) seeded: 2,000 live runs added and seen once by a tick, then,
before each tick, `quiet` changes nothing, `tick` adds 200 stuck runs, `changing` adds them
and changes the progress of the live runs. ``--cold`` reads the backend's copy of the table
between ticks, as the bench's interleaved baseline does (CPU caches cold, as a minute apart
in production). Prints the tick's median and each statement's. The live runs are finished
at the end; the stuck ones stay failed, as the bench leaves them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_urlsafe(48)}")

from bench.scenario import ACTIVE, ACTIVE_SQL, STUCK, STUCK_SQL, django_setup  # noqa: E402

Log = list[tuple[float, str]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", choices=["quiet", "tick", "changing"])
    parser.add_argument("--ticks", type=int, default=21)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    django_setup()
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper

    from runs.maintenance import monitor_tick
    from runs.maintenance.liveness import vacuum_observations

    def execute(sql: str, params=None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    log: Log = []
    commit = BaseDatabaseWrapper._commit

    def timed_commit(self) -> None:
        started = time.perf_counter()
        try:
            commit(self)
        finally:
            log.append((time.perf_counter() - started, "COMMIT"))

    def timed(execute_, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute_(sql, params, many, context)
        finally:
            log.append((time.perf_counter() - started, " ".join(sql.split())[:80]))

    BaseDatabaseWrapper._commit = timed_commit
    label = f"parts_{os.getpid()}"
    execute(ACTIVE_SQL, {"label": label, "count": ACTIVE})
    before = _before(args.figure, execute, f"tr_act_{label}_%")
    monitor_tick()
    ticks, parts = [], {}
    for _ in range(args.ticks):
        vacuum_observations()  # as the bench does between ticks
        before()
        if args.cold:
            execute("SELECT count(*) FROM tender_runs_backend WHERE message IS NOT NULL")
        log.clear()
        with connection.execute_wrapper(timed):
            started = time.perf_counter()
            monitor_tick()
            ticks.append(time.perf_counter() - started)
        for position, (seconds, text) in enumerate(log):
            parts.setdefault((position, text), []).append(seconds)
    execute(
        "UPDATE tender_runs SET status = 'success', finished_at = now() WHERE id LIKE %s",
        [f"tr_act_{label}_%"],
    )
    print(f"{args.figure}: tick median {1000 * statistics.median(ticks):.2f} ms")
    for (_, text), seconds in sorted(parts.items()):
        print(f"{1000 * statistics.median(seconds):7.2f} ms  {text}")


def _before(figure: str, execute: Callable[..., None], live: str) -> Callable[[], None]:
    rounds = iter(range(1_000_000))

    def add_stuck() -> None:
        params = {"round": f"parts-{os.getpid()}-{next(rounds)}", "count": STUCK}
        params |= {"step": "15 seconds", "prefix": "tr_"}
        execute(STUCK_SQL.format(table="tender_runs"), params)

    def change_progress() -> None:
        execute("UPDATE tender_runs SET progress = progress + 0.0001 WHERE id LIKE %s", [live])

    return {
        "quiet": lambda: None,
        "tick": add_stuck,
        "changing": lambda: (add_stuck(), change_progress()),
    }[figure]


if __name__ == "__main__":
    main()
