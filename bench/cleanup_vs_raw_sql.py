"""Benchmark: `cleanup_stuck_runs --auto-fix` against the hand-written SQL operators ran.

Builds a PostgreSQL database of N runs (default 1,000,000) with `seed_demo_runs`, 200 of them
stuck, then times, interleaved in the same process and database:

  tenderops   the routine behind `cleanup_stuck_runs --auto-fix` (find + fail + audit)
  raw SQL     UPDATE tender_runs SET status='failed', ... WHERE status='running'
              AND started_at < NOW() - INTERVAL '10 minutes'

first with tenderops' indexes, then with the table as the tender backend created it (the
tenderops indexes dropped). Before every repetition the same 200 runs are put back to
`running`. Prints min / median / max per variant and the ratio of medians.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/cleanup_vs_raw_sql.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RAW_SQL = (
    "UPDATE tender_runs SET status = 'failed', finished_at = now(), "
    "error = '任务超时未完成', message = '任务异常终止：超时未完成' "
    "WHERE status = 'running' AND started_at < NOW() - INTERVAL '10 minutes'"
)
TENDEROPS_INDEXES = (
    "tenderops_running_started",
    "tenderops_status_started",
    "tenderops_started_id",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--stuck", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database", default="tenderops_bench")
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database.")
    return parser.parse_args()


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def prepare_database(base_url: str, name: str, reuse: bool) -> str:
    with psycopg.connect(with_database(base_url, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not reuse:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not reuse:
            admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(base_url, name)


def timed(work: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    result = work()
    return (time.perf_counter() - began) * 1000, result


def summary(samples: list[float]) -> str:
    return f"{min(samples):8.2f} {statistics.median(samples):8.2f} {max(samples):8.2f}"


def main() -> None:
    args = parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = prepare_database(base, args.database, args.reuse)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from runs.demo_data import seeded_run_ids
    from runs.maintenance import fail_stuck_runs
    from runs.models import Actor

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tender_runs")
        have = cursor.fetchone()[0]
    if have == 0:
        began = time.perf_counter()
        call_command(
            "seed_demo_runs", runs=args.runs, stuck=args.stuck, live_running=20, pending=10
        )
        print(f"seeded {args.runs:,} runs in {time.perf_counter() - began:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tender_runs")
    stuck_ids = seeded_run_ids("stuck", args.stuck)

    def reset() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tender_runs SET status = 'running', finished_at = NULL, error = NULL, "
                "message = '提取中...' WHERE id = ANY(%s)",
                [stuck_ids],
            )

    def raw() -> int:
        with connection.cursor() as cursor:
            cursor.execute(RAW_SQL)
            return cursor.rowcount

    def tenderops() -> int:
        return fail_stuck_runs(actor=Actor.CLI).fixed_count

    results: dict[str, dict[str, list[float]]] = {}
    for label in ("with tenderops indexes", "as the backend created it"):
        if label.startswith("as the backend"):
            with connection.cursor() as cursor:
                for name in TENDEROPS_INDEXES:
                    cursor.execute(f"DROP INDEX IF EXISTS {name}")
                cursor.execute("ANALYZE tender_runs")
        samples: dict[str, list[float]] = {"tenderops": [], "raw SQL": []}
        for _ in range(args.repeat):
            for name, work in (("tenderops", tenderops), ("raw SQL", raw)):
                reset()
                elapsed, fixed = timed(work)
                assert fixed == len(stuck_ids), (name, fixed)
                samples[name].append(elapsed)
        results[label] = samples
    reset()

    print(f"\n{args.runs:,} runs, {len(stuck_ids)} stuck, {args.repeat} repetitions, ms")
    print(f"{'table':28} {'variant':10} {'min':>8} {'median':>8} {'max':>8}")
    for label, samples in results.items():
        for name, values in samples.items():
            print(f"{label:28} {name:10} {summary(values)}")
    baseline = statistics.median(results["as the backend created it"]["raw SQL"])
    ours = statistics.median(results["with tenderops indexes"]["tenderops"])
    same_table = statistics.median(results["with tenderops indexes"]["raw SQL"])
    print(
        f"\ntenderops (indexed) vs operators' raw SQL on the backend's table: "
        f"{baseline / ours:.1f}x faster ({ours:.2f} ms vs {baseline:.2f} ms)"
    )
    print(f"tenderops vs the same raw SQL on the indexed table: {ours / same_table:.2f}x its time")
    print("(tenderops includes the audit log: one action row and one row per failed run)")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'runs' AND name LIKE '0003%%'")
    call_command("migrate", verbosity=0)  # puts the indexes back, CONCURRENTLY


if __name__ == "__main__":
    main()
