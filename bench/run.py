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
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.timing import Probe, Spread, repeat, time_n, timed  # noqa: E402

RESULTS = REPO / "bench" / "results.md"
SAVED = REPO / "bench" / "data"  # raw samples per size, for --with-saved (git-ignored)
STUCK = 200
EXPIRED = 1_000_000
PRUNE_REPEAT = 3
BUDGET_SIZE = 10_000_000  # the issue sets every budget at 10 M runs
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for the in-process client

FIGURES = ("tick", "quiet_tick", "prune", "list", "stats", "health")
RAW_TICK = (
    "UPDATE tender_runs_backend SET status = 'failed', finished_at = now(), "
    "error = '任务超时未完成', message = '任务异常终止：超时未完成' "
    "WHERE status = 'running' AND started_at < NOW() - INTERVAL '10 minutes'"
)
# The expired runs the prune figure deletes, and the retention that makes prune_runs delete
# exactly these.
EXPIRED_WHERE = "status = 'failed' AND started_at < NOW() - INTERVAL '900 days'"
RAW_DELETE = f"DELETE FROM tender_runs WHERE {EXPIRED_WHERE}"
PRUNE_DAYS = {"failed_days": 900, "success_days": 36_500}
RAW_GROUP_BY = "SELECT status, COALESCE(kind, run_type), count(*) FROM tender_runs GROUP BY 1, 2"
# What a tick meets in production, where the monitor runs every minute: runs that crossed
# their 10-minute timeout since the last ticks (a worker pool that died, its 200 runs started
# 11 to 61 minutes ago), with random ids like the backend's.
STUCK_SQL = """
INSERT INTO {table} (id, project_id, run_type, kind, status, started_at, meta_json, progress,
                     message)
SELECT 'tr_' || md5('stuck' || %(round)s || '-' || g), p.ids[1 + g %% 100], 'risks',
       CASE WHEN g %% 3 = 0 THEN NULL ELSE 'extract_risks' END, 'running',
       now() - interval '11 minutes' - g * interval '15 seconds', '{{}}'::jsonb, 0.5,
       '风险提取中...'
FROM generate_series(1, %(count)s) AS g,
     (SELECT array_agg(id) AS ids FROM (SELECT id FROM tender_projects LIMIT 100) AS p) AS p
"""
# Ordered ids and times: the 1 M expired rows load in seconds, not minutes of random writes.
EXPIRED_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, finished_at,
                         error, meta_json, message)
SELECT 'tr_0' || %(round)s || lpad(g::text, 24, '0'), p.id, 'risks', 'extract_risks', 'failed',
       now() - interval '1000 days' - g * interval '1 second',
       now() - interval '1000 days' - g * interval '1 second' + interval '3 minutes',
       'LLM 调用超时', '{}'::jsonb, '任务失败'
FROM generate_series(1, %(count)s) AS g, (SELECT id FROM tender_projects LIMIT 1) AS p
"""

# How many heap pages hold the expired runs: the layout a prune works through.
EXPIRED_PAGES_SQL = (
    f"SELECT count(DISTINCT (ctid::text::point)[0]) FROM tender_runs WHERE {EXPIRED_WHERE}"
)

# --- orchestration (no Django here) ----------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="tenderops benchmarks")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[1_000_000, 10_000_000],
        help="sizes to seed and measure (none: only report --with-saved)",
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
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeat, set(args.only))))
        return
    if args.memory:
        print(json.dumps(memory_probe()))
        return
    results = {}
    for size in args.sizes:
        url = database_url(base, size)
        prepare(url, size, args.reuse)
        if args.prepare_only:
            continue
        env = {**os.environ, "DATABASE_URL": url}
        worker_args = ["--worker", str(size), "--repeat", str(args.repeat), "--only", *args.only]
        figures = json.loads(run_child(worker_args, env))
        if set(args.only) != set(FIGURES):
            print(json.dumps(figures, indent=1))
            continue
        figures["memory"] = json.loads(run_child(["--memory", str(size)], env))
        results[size] = figures
        SAVED.mkdir(exist_ok=True)
        (SAVED / f"bench-{size}.json").write_text(json.dumps(figures))
        print(f"--- {size:,} runs done", file=sys.stderr)
    if set(args.only) != set(FIGURES):
        return
    for size in args.with_saved:
        results.setdefault(size, json.loads((SAVED / f"bench-{size}.json").read_text()))
    report = render(dict(sorted(results.items())), args.repeat)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


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


# --- measuring (inside Django, one process per size) -----------------------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
    os.environ["TENDEROPS_API_TOKEN"] = TOKEN
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


def samples_of(spreads: dict[str, Spread]) -> dict[str, list[float]]:
    """What the worker reports (as JSON) and --with-saved reads back: the raw samples."""
    return {name: list(spread.samples) for name, spread in spreads.items()}


def prepare_expired_runs(execute: Callable[..., object], label: str) -> None:
    """Insert 1 M expired runs as they stand before a prune (untimed, the same for both sides).

    The first VACUUM frees the last prune's rows, so every round's rows take the same pages:
    without it, tenderops's rounds and the baseline's alternate between two layouts (25,642
    and 58,627 heap pages for the same 1 M rows at 10 M), and the ratio measures the layout.
    Then, as before a real prune, autovacuum has been by (pages all-visible) and a checkpoint.
    """
    execute("VACUUM tender_runs")
    execute(EXPIRED_SQL, {"round": label, "count": EXPIRED})
    execute("VACUUM tender_runs")
    execute("CHECKPOINT")


def worker(size: int, repeat_: int, only: set[str]) -> dict:
    django_setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from runs.demo_data import seeded_run_ids
    from runs.maintenance import monitor_tick, prune_runs
    from runs.models import Actor

    live_ids = seeded_run_ids("live", 50) + seeded_run_ids("pending", 30)
    rounds = iter(range(1_000_000))

    def execute(sql: str, params=None) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def start_ticks() -> None:
        """Keep the seeded live runs live, and fail what is stuck already (untimed)."""
        for table in ("tender_runs", "tender_runs_backend"):
            execute(
                f"UPDATE {table} SET started_at = now() - interval '1 minute', "
                "status = CASE WHEN id = ANY(%s) THEN 'running' ELSE 'pending' END, "
                "finished_at = NULL WHERE id = ANY(%s)",
                [live_ids[:50], live_ids],
            )
        monitor_tick()
        execute(RAW_TICK)

    def add_stuck_runs() -> None:
        # New runs each time, as in production where a run gets stuck and is failed once;
        # resetting the same rows would churn the same index keys over and over.
        params = {"round": f"{os.getpid()}-{next(rounds)}", "count": STUCK}
        for table in ("tender_runs", "tender_runs_backend"):
            execute(STUCK_SQL.format(table=table), params)

    def expect_rows(count: int) -> Callable[[int], None]:
        def check(rowcount: int) -> None:
            assert rowcount == count, rowcount

        return check

    def all_stuck_failed(result) -> None:
        assert result.fixed_count == STUCK, result.fixed_count

    def measure_tick() -> dict[str, list[float]]:
        start_ticks()
        ours = Probe(monitor_tick, before=add_stuck_runs, check=all_stuck_failed)
        raw = Probe(lambda: execute(RAW_TICK), check=expect_rows(STUCK))
        return samples_of(repeat(repeat_, {"tenderops": ours, "baseline": raw}))

    def measure_quiet_tick() -> dict[str, list[float]]:
        start_ticks()
        return samples_of(
            repeat(repeat_, {"tenderops": monitor_tick, "baseline": lambda: execute(RAW_TICK)})
        )

    def measure_prune() -> dict[str, list[float]]:
        extra: dict[str, list[float]] = {
            "longest_batch_ms": [],
            "tenderops_pages": [],
            "baseline_pages": [],
        }
        labels = {side: itertools.count() for side in ("tenderops", "baseline")}

        def expired_runs_for(side: str) -> Callable[[], None]:
            def prepare() -> None:
                prepare_expired_runs(execute, f"{side[0]}{next(labels[side])}")
                extra[f"{side}_pages"].append(expired_pages())

            return prepare

        def pruned_all(result) -> None:
            assert result.total == EXPIRED, result.deleted
            extra["longest_batch_ms"].append(result.longest_batch_seconds * 1000)

        ours = Probe(
            lambda: prune_runs(actor=Actor.CLI, **PRUNE_DAYS),
            before=expired_runs_for("tenderops"),
            check=pruned_all,
        )
        raw = Probe(
            lambda: execute(RAW_DELETE),
            before=expired_runs_for("baseline"),
            check=expect_rows(EXPIRED),
        )
        spreads = repeat(PRUNE_REPEAT, {"tenderops": ours, "baseline": raw})
        execute("ANALYZE tender_runs")
        return {**samples_of(spreads), **extra}

    def expired_pages() -> int:
        with connection.cursor() as cursor:
            cursor.execute(EXPIRED_PAGES_SQL)
            return cursor.fetchone()[0]

    client = Client()
    client.force_login(
        User.objects.filter(username="bench").first()
        or User.objects.create_superuser("bench", "bench@example.invalid", "bench")
    )

    def page(url: str, **headers) -> Probe:
        def answered(response) -> None:
            assert response.status_code in {200, 503}, (url, response.status_code)

        return Probe(lambda: client.get(url, **headers), check=answered)

    def measure_list() -> dict[str, list[float]]:
        some_run = seeded_run_ids("live", 1)[0]
        return samples_of(
            repeat(
                repeat_,
                {
                    "unfiltered": page("/admin/runs/tenderrun/"),
                    "status=running": page("/admin/runs/tenderrun/?status=running"),
                    "search run id": page(f"/admin/runs/tenderrun/?q={some_run}"),
                },
            )
        )

    def measure_stats() -> dict[str, list[float]]:
        return samples_of(
            repeat(
                repeat_,
                {
                    "tenderops": page("/admin/runs/tenderrun/stats/"),
                    "baseline": lambda: execute(RAW_GROUP_BY),
                },
            )
        )

    def measure_health() -> dict[str, list[float]]:
        monitor_tick()
        health = page("/api/apps/tender/admin/health", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        return samples_of({"tenderops": time_n(health.work, repeat_, check=health.check)})

    sections = {
        "tick": measure_tick,
        "quiet_tick": measure_quiet_tick,
        "prune": measure_prune,
        "list": measure_list,
        "stats": measure_stats,
        "health": measure_health,
    }
    execute(RAW_DELETE)  # leftovers of an interrupted earlier run
    # Start from the tables as autovacuum leaves them, without the dead rows an earlier run
    # (--reuse) left behind.
    execute("VACUUM ANALYZE tender_runs")
    execute("VACUUM ANALYZE tender_runs_backend")
    return {name: measure() for name, measure in sections.items() if name in only}


def memory_probe() -> dict:
    """Peak RSS of a Django process that renders the stats page and prunes 1 M rows."""
    django_setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from runs.maintenance import prune_runs
    from runs.models import Actor

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    assert client.get("/admin/runs/tenderrun/stats/").status_code == 200
    after_stats = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        cursor.execute(EXPIRED_SQL, {"round": "memory", "count": EXPIRED})
    prune_runs(actor=Actor.CLI, **PRUNE_DAYS)
    after_prune = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"start_kib": before, "after_stats_kib": after_stats, "after_prune_kib": after_prune}


# --- reporting -------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return str(Spread(values))


def median(values: list[float]) -> float:
    return Spread(values).median


def render(results: dict[int, dict], repeat: int) -> str:
    lines = [
        "# tenderops benchmark results",
        "",
        f"Written by `make bench` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), "
        f"{os.cpu_count()} cores. Times in ms as min / median / max over {repeat} runs "
        f"(prune: {PRUNE_REPEAT} runs), tenderops and its raw-SQL baseline interleaved in one "
        "process and database. Ratios compare medians.",
        "",
        "| rows | figure | tenderops | raw-SQL baseline | ratio | budget | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, f in results.items():
        rows = f"{size:,}"
        # The budgets are set at 10 M runs; against a smaller table's faster raw SQL the
        # ratios are reported, not judged (the absolute budgets hold at every size).
        judged = size >= BUDGET_SIZE
        tick, base = f["tick"]["tenderops"], f["tick"]["baseline"]
        speedup = median(base) / median(tick)
        ok = median(tick) <= 20 and (speedup >= 50 or not judged)
        lines.append(
            f"| {rows} | monitor tick, 200 stuck (audit included) | {spread(tick)} | "
            f"{spread(base)} | {speedup:.0f}x faster | <= 20 ms and >= 50x{_star(judged)} | "
            f"{_mark(ok)} |"
        )
        quiet, qbase = f["quiet_tick"]["tenderops"], f["quiet_tick"]["baseline"]
        lines.append(
            f"| {rows} | monitor tick, nothing stuck | {spread(quiet)} | {spread(qbase)} | "
            f"{median(qbase) / median(quiet):.0f}x faster | <= 5 ms | "
            f"{_mark(median(quiet) <= 5)} |"
        )
        prune = f["prune"]
        ours_rate = EXPIRED / (median(prune["tenderops"]) / 1000)
        raw_rate = EXPIRED / (median(prune["baseline"]) / 1000)
        longest = max(prune["longest_batch_ms"])
        raw_ms = median(prune["baseline"])
        prune_ok = longest <= 1000 and (ours_rate / raw_rate >= 0.7 or not judged)
        lines.append(
            f"| {rows} | prune 1 M expired rows (default settings) | "
            f"{ours_rate:,.0f} rows/s, longest transaction {longest:.0f} ms | "
            f"{raw_rate:,.0f} rows/s, one transaction of {raw_ms:.0f} ms | "
            f"{ours_rate / raw_rate:.2f}x throughput | "
            f">= 0.7x{_star(judged)}, no transaction > 1 s | {_mark(prune_ok)} |"
        )
        for name, values in f["list"].items():
            lines.append(
                f"| {rows} | admin list, {name} | {spread(values)} | – | – | <= 300 ms | "
                f"{_mark(median(values) <= 300)} |"
            )
        stats, gb = f["stats"]["tenderops"], f["stats"]["baseline"]
        ratio = median(stats) / median(gb)
        lines.append(
            f"| {rows} | stats page | {spread(stats)} | {spread(gb)} (GROUP BY status, kind) | "
            f"{ratio:.2f}x its time | <= 1.5 s or <= 2x | "
            f"{_mark(median(stats) <= 1500 or ratio <= 2)} |"
        )
        health = f["health"]["tenderops"]
        lines.append(
            f"| {rows} | health endpoint | {spread(health)} | – | – | <= 50 ms | "
            f"{_mark(median(health) <= 50)} |"
        )
        mem = {key: f"{kib / 1024:.0f} MiB" for key, kib in f["memory"].items()}
        lines.append(
            f"| {rows} | peak RSS of a process rendering stats then pruning 1 M rows | "
            f"{mem['after_prune_kib']} (after stats {mem['after_stats_kib']}, at start "
            f"{mem['start_kib']}) | – | – | flat across sizes | see below |"
        )
    peaks = {size: f["memory"]["after_prune_kib"] for size, f in results.items()}
    if len(peaks) > 1:
        low, high = min(peaks.values()), max(peaks.values())
        lines += [
            "",
            f"Peak RSS across sizes: {low / 1024:.0f} to {high / 1024:.0f} MiB "
            f"({'flat' if high <= low * 1.15 else 'GROWS'} within 15 %).",
        ]
    lines += ["", *_prune_layouts(results)]
    lines += [
        "",
        "Reproduce: with PostgreSQL on 127.0.0.1:5432, `make bench` "
        "(`python bench/run.py --reuse` keeps the seeded databases between runs).",
        "",
        "How each figure is set up (untimed, the same for tenderops and its baseline):",
        "",
        "- ticks: before each pair, 200 new runs that crossed their 10-minute timeout 1 to 50",
        "  minutes ago are added to both tables (as in production, where the monitor runs",
        "  every minute and a run is failed once); tenderops fails them on `tender_runs`, the",
        "  operators' UPDATE on `tender_runs_backend`;",
        "- prune: before each prune, `VACUUM` (so each round's rows take the pages the last",
        "  round freed, the same layout for both sides), 1 M expired runs inserted, `VACUUM`",
        "  and `CHECKPOINT` (expired rows were written long ago and autovacuum has been by",
        "  since); tenderops runs `prune_runs` with its defaults, the baseline one DELETE;",
        "- pages: server time through Django's test client, logged in as a superuser;",
        "- the issue sets every budget at 10 M runs: at 1 M the ratios to raw SQL are shown,",
        "  marked *(judged at 10 M)*, and only the absolute budgets are judged (the operators'",
        "  UPDATE scans a table ten times smaller, while a tick takes the same time at any",
        "  size).",
        "",
    ]
    return "\n".join(lines)


def _prune_layouts(results: dict[int, dict]) -> list[str]:
    """Both sides of the prune ratio must delete rows laid out alike: say how they lay."""
    lines = []
    for size, f in results.items():
        pages = {side: f["prune"].get(f"{side}_pages") for side in ("tenderops", "baseline")}
        if all(pages.values()):
            lines.append(
                f"Prune at {size:,} runs: the 1 M expired rows lay on "
                f"{median(pages['tenderops']):,.0f} heap pages before tenderops's "
                f"prunes, {median(pages['baseline']):,.0f} before the raw DELETE "
                "(medians)."
            )
    return lines


def _star(judged: bool) -> str:
    return "" if judged else " (judged at 10 M)"


def _mark(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


if __name__ == "__main__":
    main()
