"""The floor under a monitor tick: the same 200-row UPDATE, by hand, on the indexed table.

Run after `make bench` (it uses the 10 M database that bench/run.py seeded):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tenderops_bench_10m python bench/tick_floor.py
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from runs.demo_data import seeded_run_ids  # noqa: E402
from runs.maintenance import monitor_tick  # noqa: E402

STUCK = seeded_run_ids("stuck", 200)
RAW = (
    "UPDATE tender_runs SET status = 'failed', finished_at = now(), error = 'x', message = 'y' "
    "WHERE status = 'running' AND started_at < now() - interval '10 minutes'"
)


def execute(sql: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def reset() -> None:
    execute(
        "UPDATE tender_runs SET status = 'running', finished_at = NULL WHERE id = ANY(%s)", [STUCK]
    )
    execute(
        "UPDATE tender_runs SET started_at = now() WHERE status = 'running' AND id <> ALL(%s)",
        [STUCK],
    )


def timed(work) -> float:
    reset()
    began = time.perf_counter()
    work()
    return (time.perf_counter() - began) * 1000


ticks, raws = [], []
for _ in range(7):
    ticks.append(timed(monitor_tick))
    raws.append(timed(lambda: execute(RAW)))
print(f"monitor tick (200 stuck):        median {statistics.median(ticks):.1f} ms")
print(f"raw UPDATE, same indexed table:  median {statistics.median(raws):.1f} ms")
