"""BENCH_LOAD=1: the bench measured on a machine that is never idle, as production's is.

While a size is measured, ``background_load`` runs, beside the bench, one process per core
spinning on the CPU and one process writing to the benchmark's database what the tender
backend writes all day: runs created, their progress written a few times, then finished,
statement by statement. Its runs belong to a project of their own and are deleted at the end;
every process stops after BENCH_LOAD_SECONDS (default 3 hours) even if the bench dies.

    BENCH_LOAD=1 make bench
    BENCH_LOAD=1 python bench/run.py --reuse --sizes 10000000
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

LOAD_PROJECT = "tp_bench_load"
PROGRESS_WRITES = 4  # per run, as the backend's workers report their progress
PAUSE_SECONDS = 0.005  # between the backend's statements: about 150 a second


def _deadline() -> float:
    return time.monotonic() + float(os.environ.get("BENCH_LOAD_SECONDS", 3 * 3600))


def _spin(deadline: float) -> None:
    while time.monotonic() < deadline:
        sum(range(10_000))


def _write_like_the_backend(url: str, deadline: float) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            run_id = f"tr_load_{os.getpid()}_{n}"
            conn.execute(
                "INSERT INTO tender_runs (id, project_id, run_type, kind, status, meta_json, "
                "progress, message) VALUES (%s, %s, 'risks', 'extract_risks', 'running', "
                "'{}'::jsonb, 0, '风险提取中...')",
                [run_id, LOAD_PROJECT],
            )
            for step in range(1, PROGRESS_WRITES + 1):
                time.sleep(PAUSE_SECONDS)
                conn.execute(
                    "UPDATE tender_runs SET progress = %s WHERE id = %s",
                    [step / (PROGRESS_WRITES + 1), run_id],
                )
            time.sleep(PAUSE_SECONDS)
            conn.execute(
                "UPDATE tender_runs SET status = 'success', finished_at = now(), progress = 1 "
                "WHERE id = %s",
                [run_id],
            )


def _forget_load_runs(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM tender_runs WHERE project_id = %s", [LOAD_PROJECT])


@contextmanager
def background_load(url: str, *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tender_projects (id, kb_id, name) VALUES (%s, 'kb_bench', 'bench load') "
            "ON CONFLICT (id) DO NOTHING",
            [LOAD_PROJECT],
        )
    deadline = _deadline()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_spin, args=(deadline,), daemon=True)
        for _ in range(os.cpu_count() or 1)
    ]
    workers.append(
        context.Process(target=_write_like_the_backend, args=(url, deadline), daemon=True)
    )
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()
        _forget_load_runs(url)
