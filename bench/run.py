"""`make bench`: tenderops at 1 M and 10 M runs, against raw SQL measured in the same run.

For each size it builds (or, with --reuse, keeps) a PostgreSQL database seeded by
`seed_demo_runs`, plus `tender_runs_backend`: a copy of the table as the tender backend
created it (its own indexes only), which the operators' hand-written SQL runs against.
Each figure is measured several times, tenderops and its baseline interleaved, in one process
per size (bench/timing.py); peak memory is measured in a separate process per size. Results
are printed and written to bench/results.md; each size's raw samples are saved under
bench/data/ (not committed). Nothing outside bench/ is written.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/run.py
    python bench/run.py --sizes 1000000 --repeat 3          # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import background_load  # noqa: E402
from bench.report import render  # noqa: E402
from bench.scenario import FIGURES, STUCK  # noqa: E402
from bench.timing import timed  # noqa: E402

RESULTS = REPO / "bench" / "results.md"
SAVED = REPO / "bench" / "data"  # raw samples per size, for --with-saved (git-ignored)

# --- orchestration (no Django here) ----------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="tenderops benchmarks")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=sizes_from_env(os.environ.get("BENCH_SIZES", "1m,10m")),
        help="sizes to seed and measure (none: only report --with-saved); "
        "default: BENCH_SIZES (1m,10m)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep already seeded databases")
    parser.add_argument(
        "--with-saved",
        type=int,
        nargs="*",
        default=[],
        metavar="SIZE",
        help="also report these sizes from their last saved run (bench/data/bench-SIZE.json)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=FIGURES,
        default=list(FIGURES),
        help="measure only these figures and print them (bench/results.md is left alone)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="seed the databases, measure nothing"
    )
    parser.add_argument(
        "--update-saved",
        action="store_true",
        help="with --only: put these figures into each size's saved run (bench/data/) and "
        "write results.md from the saved runs, naming what was measured again",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    # Debug stays off, as in production (it keeps every query in memory); a throwaway key.
    os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_urlsafe(48)}")
    if args.worker:
        from bench.worker import worker

        print(json.dumps(worker(args.worker, args.repeat, set(args.only))))
        return
    if args.memory:
        from bench.memory import memory_probe

        print(json.dumps(memory_probe()))
        return
    unsaved = [size for size in args.sizes if not (SAVED / f"bench-{size}.json").exists()]
    if args.update_saved and unsaved:
        # Checked before measuring: a fresh clone has no saved runs (bench/data is not kept).
        parser.error(f"--update-saved: no saved run of {unsaved[0]:,} runs; run make bench first")
    missing = [size for size in args.with_saved if not (SAVED / f"bench-{size}.json").exists()]
    if missing:
        parser.error(f"--with-saved: no saved run of {missing[0]:,} runs; run make bench first")
    results = {}
    for size in args.sizes:
        url = database_url(base, size)
        prepare(url, size, args.reuse)
        if args.prepare_only:
            continue
        env = {**os.environ, "DATABASE_URL": url}
        worker_args = ["--worker", str(size), "--repeat", str(args.repeat), "--only", *args.only]
        loadavg_before = os.getloadavg()[0]
        with background_load(url, enabled=os.environ.get("BENCH_LOAD") == "1"):
            figures = json.loads(run_child(worker_args, env))
        figures["conditions"] = {
            "load": os.environ.get("BENCH_LOAD") == "1",
            "loadavg_before": loadavg_before,
            "loadavg_after": os.getloadavg()[0],
        }
        if set(args.only) != set(FIGURES):
            if args.update_saved:
                update_saved(size, figures)
            else:
                print(json.dumps(figures, indent=1))
            continue
        figures["memory"] = json.loads(run_child(["--memory", str(size)], env))
        results[size] = figures
        SAVED.mkdir(exist_ok=True)
        (SAVED / f"bench-{size}.json").write_text(json.dumps(figures))
        print(f"--- {size:,} runs done", file=sys.stderr)
    if args.update_saved and set(args.only) != set(FIGURES):
        saved = sorted(int(path.stem.split("-")[1]) for path in SAVED.glob("bench-*.json"))
        results = {size: json.loads((SAVED / f"bench-{size}.json").read_text()) for size in saved}
        report = render(results, args.repeat, [])
        RESULTS.write_text(report, encoding="utf-8")
        print(report)
        return
    if args.prepare_only or set(args.only) != set(FIGURES):
        return
    for size in args.with_saved:
        results.setdefault(size, json.loads((SAVED / f"bench-{size}.json").read_text()))
    report = render(dict(sorted(results.items())), args.repeat, [])
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


def update_saved(size: int, figures: dict) -> None:
    """Replace these figures in the size's saved run, noting when and under what conditions
    they were measured again (results.md names them)."""
    path = SAVED / f"bench-{size}.json"
    saved = json.loads(path.read_text())
    conditions = figures.pop("conditions")
    saved.update(figures)
    saved.setdefault("remeasured", []).append(
        {
            "figures": sorted(figures),
            "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            **conditions,
        }
    )
    path.write_text(json.dumps(saved))


def sizes_from_env(text: str) -> list[int]:
    """``1m,10m,30m`` (or plain numbers) as sizes."""
    sizes = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        sizes.append(int(item[:-1]) * 1_000_000 if item.endswith("m") else int(item))
    return sizes


def database_url(base: str, size: int) -> str:
    """``<BENCH_DB_PREFIX>_<size>`` (default ``tenderops_bench_1m`` ...) on ``base``'s server."""
    label = f"{size // 1_000_000}m" if size >= 1_000_000 else str(size)
    prefix = os.environ.get("BENCH_DB_PREFIX", "tenderops_bench")
    return urlsplit(base)._replace(path=f"/{prefix}_{label}").geturl()


def run_child(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"benchmark step {args} failed")
    return done.stdout.strip().splitlines()[-1]


def prepare(url: str, size: int, reuse: bool) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    admin = urlsplit(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reuse:
            print(f"reusing {name}", file=sys.stderr)
        else:
            if exists:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            exists = None
    env = {**os.environ, "DATABASE_URL": url}
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=REPO)
    with psycopg.connect(url, autocommit=True) as conn:
        seeded = conn.execute("SELECT count(*) FROM tender_runs").fetchone()[0]
        if not seeded:
            seed = [
                *manage,
                "seed_demo_runs",
                "--runs",
                str(size),
                "--stuck",
                str(STUCK),
                "--live-running",
                "50",
                "--pending",
                "30",
            ]
            elapsed, _ = timed(lambda: subprocess.run(seed, env=env, check=True, cwd=REPO))
            print(f"seeded {size:,} in {elapsed / 1000:.0f} s", file=sys.stderr)
            conn.execute("VACUUM ANALYZE tender_runs")
        has_copy = conn.execute("SELECT to_regclass('tender_runs_backend')").fetchone()[0]
        if not has_copy:
            # The table as the tender backend made it: same rows, only the backend's indexes.
            conn.execute("CREATE TABLE tender_runs_backend (LIKE tender_runs INCLUDING DEFAULTS)")
            conn.execute("INSERT INTO tender_runs_backend SELECT * FROM tender_runs")
            conn.execute("ALTER TABLE tender_runs_backend ADD PRIMARY KEY (id)")
            conn.execute("CREATE INDEX ON tender_runs_backend (project_id)")
            conn.execute("CREATE INDEX ON tender_runs_backend (platform_job_id)")
            conn.execute("VACUUM ANALYZE tender_runs_backend")


if __name__ == "__main__":
    main()
