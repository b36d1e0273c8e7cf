"""Where a batched prune spends more than one raw DELETE: its parts, timed on the same layout.

Each variant deletes the same 1 M expired runs (bench/run.py's setup, which gives every round
the same heap pages), in SQL with the prune's query shapes:

- raw: the operators' one DELETE;
- ends: reading each batch's end from the index (`OFFSET size`), nothing deleted;
- batches in one transaction / batches, a transaction each: the range DELETEs alone,
  at the ends read beforehand.

Run after `make bench` against one of its databases:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tenderops_bench_1m \\
        python bench/prune_costs.py [batch size] [rounds]
"""

import os
import sys
from datetime import datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.scenario import EXPIRED_WHERE, RAW_DELETE  # noqa: E402
from bench.timing import Samples  # noqa: E402
from bench.worker import prepare_expired_runs  # noqa: E402


def execute(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def batch_ends(size: int) -> list[datetime]:
    ends: list[datetime] = []
    while True:
        after = " AND started_at >= %s" if ends else ""
        row = execute(
            f"SELECT started_at FROM tender_runs WHERE {EXPIRED_WHERE}{after} "
            f"ORDER BY started_at OFFSET {size} LIMIT 1",
            ends[-1:],
        )
        if not row:
            return ends
        ends.append(row[0][0])


def delete_ranges(ends: list[datetime], commit_each: bool) -> None:
    starts: list[datetime | None] = [None, *ends]
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        for start, end in zip(starts, [*ends, None], strict=True):
            bounds = [(" AND started_at >= %s", start), (" AND started_at < %s", end)]
            where = EXPIRED_WHERE + "".join(sql for sql, value in bounds if value is not None)
            params = [value for _, value in bounds if value is not None]
            cursor.execute(f"DELETE FROM tender_runs WHERE {where}", params)
            if commit_each:
                cursor.execute("COMMIT")
                cursor.execute("BEGIN")
        cursor.execute("COMMIT")


def main(size: int, rounds: int) -> None:
    # Each step needs the one before it (the batches delete at the ends just read), so the
    # samples are gathered one by one rather than by repeat().
    samples = Samples()
    labels = iter(range(1_000_000))
    for _ in range(rounds):
        prepare_expired_runs(execute, f"c{next(labels)}")
        samples.record("raw DELETE", lambda: execute(RAW_DELETE))
        for commit_each, name in ((False, "in one transaction"), (True, "a transaction each")):
            prepare_expired_runs(execute, f"c{next(labels)}")
            ends = samples.record(f"ends, {size:,} rows a batch", lambda: batch_ends(size))
            samples.record(f"batches {name}", partial(delete_ranges, ends, commit_each))
    for name, spread in samples.spreads().items():
        print(f"{name:40} {spread:.0f} ms (min / median / max)")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 3,
    )
