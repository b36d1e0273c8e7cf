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
import csv
import io
import itertools
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import background_load  # noqa: E402
from bench.report import render  # noqa: E402
from bench.timing import Probe, Spread, repeat, time_n, timed  # noqa: E402

RESULTS = REPO / "bench" / "results.md"
SAVED = REPO / "bench" / "data"  # raw samples per size, for --with-saved (git-ignored)
STUCK = 200
EXPIRED = 1_000_000
PRUNE_REPEAT = 3
BUDGET_SIZE = 10_000_000  # the issue sets every budget at 10 M runs
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for the in-process client
METRICS_TOKEN = "bench-metrics-token"  # noqa: S105 - a throwaway token for the client
# Alerts "sent" by the alerting tick go to a channel nobody listens on: without a cluster the
# delivery is only queued, which is all a tick ever does.
UNHEARD_WEBHOOK = "http://127.0.0.1:9/tenderops-bench"
EXPORT_ROWS = 10_000  # the CSV export probe: a filter of about this many rows (issue 16)

FIGURES = (
    "tick_changing",
    "tick_active",
    "tick",
    "quiet_tick",
    "fleet",
    "prune",
    "list",
    "stats",
    "viewers",
    "health",
    "metrics",
    "alert_tick",
    "export",
)
ACTIVE = 2_000  # live runs whose progress changes between ticks (issue 13)
FLEET = 100_000  # runs a fleet-wide crash leaves stuck at once (issue 16)
FLEET_REPEAT = 3
VIEWERS, VIEWER_ROUNDS, VIEWER_PERIOD_SECONDS = 10, 12, 10  # ten browsers, 2 minutes
FLEET_PREFIX = "tr_z"  # the fleets' ids: never a seeded id (those are tr_ and hex digits)
API_CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
# Live runs that write their progress (1,500 running, 500 pending), started a minute ago.
ACTIVE_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, meta_json, progress,
                         message)
SELECT 'tr_act_' || %(label)s || '_' || g, p.ids[1 + g %% 100], 'risks', 'extract_risks',
       CASE WHEN g %% 4 = 0 THEN 'pending' ELSE 'running' END,
       now() - interval '1 minute', '{}'::jsonb, 0.01, '风险提取中...'
FROM generate_series(1, %(count)s) AS g,
     (SELECT array_agg(id) AS ids FROM (SELECT id FROM tender_projects LIMIT 100) AS p) AS p
RETURNING id
"""
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
SELECT %(prefix)s || md5('stuck' || %(round)s || '-' || g), p.ids[1 + g %% 100], 'risks',
       CASE WHEN g %% 3 = 0 THEN NULL ELSE 'extract_risks' END, 'running',
       now() - interval '11 minutes' - g * %(step)s::interval, '{{}}'::jsonb, 0.5,
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
    os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_urlsafe(32)}")
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


# --- measuring (inside Django, one process per size) -----------------------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
    os.environ["TENDEROPS_API_TOKEN"] = TOKEN
    os.environ["TENDEROPS_METRICS_TOKEN"] = METRICS_TOKEN
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
    from django.http import JsonResponse
    from django.test import Client

    from runs.demo_data import seeded_run_ids
    from runs.maintenance import fail_stuck_runs, monitor_tick, observe_active_runs, prune_runs
    from runs.maintenance.liveness import vacuum_observations
    from runs.maintenance.stats_snapshot import refresh_stats_snapshot
    from runs.models import Actor, TenderRun

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

    def add_stuck_runs(count: int = STUCK, step: str = "15 seconds", prefix: str = "tr_") -> None:
        # New runs each time, as in production where a run gets stuck and is failed once;
        # resetting the same rows would churn the same index keys over and over.
        params = {
            "round": f"{os.getpid()}-{next(rounds)}",
            "count": count,
            "step": step,
            "prefix": prefix,
        }
        for table in ("tender_runs", "tender_runs_backend"):
            execute(STUCK_SQL.format(table=table), params)

    def expect_rows(count: int) -> Callable[[int], None]:
        def check(rowcount: int) -> None:
            assert rowcount == count, rowcount

        return check

    def all_failed(count: int) -> Callable:
        def check(result) -> None:
            assert result.fixed_count == count, result.fixed_count

        return check

    active_ids: list[str] = []

    def start_active_runs() -> None:
        """2,000 live runs in tender_runs (the baseline's UPDATE scans the whole table anyway):
        seen once by the monitor, as they would have been (untimed)."""
        with connection.cursor() as cursor:
            cursor.execute(ACTIVE_SQL, {"label": f"{os.getpid()}", "count": ACTIVE})
            active_ids[:] = [row[0] for row in cursor.fetchall()]
        start_ticks()

    def change_progress() -> None:
        execute(
            "UPDATE tender_runs SET progress = progress + 0.0001 WHERE id = ANY(%s)", [active_ids]
        )

    def finish_active_runs() -> None:
        execute(
            "UPDATE tender_runs SET status = 'success', finished_at = now() WHERE id = ANY(%s)",
            [active_ids],
        )
        monitor_tick()  # forgets their observations (untimed)

    def tick_pair(before: Callable[[], None], stuck: int) -> dict[str, list[float]]:
        if not active_ids:
            start_active_runs()

        def between_ticks() -> None:
            # Ticks are a minute apart in production: by the next one, autovacuum (or the
            # late-finish sweep's housekeeping) has vacuumed the small observation table.
            vacuum_observations()
            before()

        ours = Probe(monitor_tick, before=between_ticks, check=all_failed(stuck))
        raw = Probe(lambda: execute(RAW_TICK), check=expect_rows(stuck))
        return samples_of(repeat(repeat_, {"tenderops": ours, "baseline": raw}))

    def measure_tick_changing() -> dict[str, list[float]]:
        return tick_pair(lambda: (add_stuck_runs(), change_progress()), STUCK)

    def measure_tick_active() -> dict[str, list[float]]:
        return tick_pair(change_progress, 0)

    def measure_tick() -> dict[str, list[float]]:
        return tick_pair(add_stuck_runs, STUCK)

    def measure_quiet_tick() -> dict[str, list[float]]:
        return tick_pair(lambda: None, 0)

    def measure_fleet() -> dict[str, list[float]]:
        """100,000 runs stuck at once, failed by the API's routine in batches; the same by
        one statement (the routine before issue 16) and by the runbook's UPDATE."""
        extra: dict[str, list[float]] = {
            "longest_batch_ms": [],
            "batches": [],
            "json_bytes": [],
            "listed": [],
            "forget_ms": [],
        }

        def fleet() -> None:
            start_ticks()
            add_stuck_runs(FLEET, "0.1 seconds", FLEET_PREFIX)
            observe_active_runs()  # the ticks that saw them run (untimed)

        def api_answer(**options) -> Callable[[], bytes]:
            def work() -> bytes:
                result = fail_stuck_runs(actor=Actor.API, **options)
                return JsonResponse(result.as_dict(), json_dumps_params={"ensure_ascii": False})

            return work

        def checked(record: bool) -> Callable:
            def check(response) -> None:
                body = json.loads(response.content)
                assert body["fixed_count"] == FLEET, body["fixed_count"]
                assert body["truncated"] is (len(body["stuck_runs"]) < FLEET)
                if record:
                    extra["json_bytes"].append(len(response.content))
                    extra["listed"].append(len(body["stuck_runs"]))
                # The next tick's observation forgets the failed runs: one more transaction.
                elapsed, _ = timed(observe_active_runs)
                if record:
                    extra["forget_ms"].append(elapsed)

            return check

        longest: list[float] = []

        def batched() -> bytes:
            result = fail_stuck_runs(actor=Actor.API)
            longest.append(result.longest_batch_seconds * 1000)
            extra["batches"].append(result.batches)
            return JsonResponse(result.as_dict(), json_dumps_params={"ensure_ascii": False})

        variants = {
            "tenderops": Probe(batched, before=fleet, check=checked(True)),
            "one_statement": Probe(
                api_answer(batch_size=FLEET + 1, list_limit=None),
                before=fleet,
                check=checked(False),
            ),
            "baseline": Probe(lambda: execute(RAW_TICK), before=fleet, check=expect_rows(FLEET)),
        }
        spreads = repeat(FLEET_REPEAT, variants)
        extra["longest_batch_ms"] = longest
        # The fleets' runs go (the table keeps its size for the next figures and runs), then
        # VACUUM, as autovacuum would after so many changed rows.
        for table in ("tender_runs", "tender_runs_backend"):
            execute(
                f"DELETE FROM {table} WHERE id LIKE %s", [FLEET_PREFIX.replace("_", "\\_") + "%"]
            )
        for table in ("tender_runs", "tender_runs_backend"):
            execute(f"VACUUM ANALYZE {table}")
        vacuum_observations()  # as the late-finish sweep does within five minutes
        return {**samples_of(spreads), **extra}

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
        # As autovacuum eventually does: until then, the dead index entries the prune left at
        # the low end of started_at cost every query bounded by EARLIEST_START its planner's
        # probe of the index end (health: 95 ms, 12.5 ms of planning a query, at 10 M; 25 ms
        # after VACUUM). See README.md, findings.
        execute("VACUUM ANALYZE tender_runs")
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
        some_project = TenderRun.objects.get(pk=some_run).project_id
        return samples_of(
            repeat(
                repeat_,
                {
                    "unfiltered": page("/admin/runs/tenderrun/"),
                    "status=running": page("/admin/runs/tenderrun/?status=running"),
                    "search run id": page(f"/admin/runs/tenderrun/?q={some_run}"),
                    "stuck=yes": page("/admin/runs/tenderrun/?stuck=yes"),
                    "a project's runs": page(f"/admin/runs/tenderrun/?project={some_project}"),
                },
            )
        )

    def measure_stats() -> dict[str, list[float]]:
        """The page (reading the snapshot) and the raw GROUP BY, interleaved; then the
        snapshot's refresh, which the cluster pays at most about once per max age."""
        refresh_stats_snapshot()
        figures = samples_of(
            repeat(
                repeat_,
                {
                    "tenderops": page("/admin/runs/tenderrun/stats/"),
                    "baseline": lambda: execute(RAW_GROUP_BY),
                },
            )
        )
        figures["refresh"] = list(time_n(refresh_stats_snapshot, 3).samples)
        return figures

    def measure_viewers() -> dict[str, list[float]]:
        """Ten browsers refreshing the runs list and the stats page every 10 s for two
        minutes: the same 240 requests, sent back to back, and the database's own busy time
        for them (pg_stat_database.active_time), as a share of one core over two minutes."""
        pages = [page("/admin/runs/tenderrun/"), page("/admin/runs/tenderrun/stats/")]

        def active_ms() -> float:
            # A backend flushes its time to pg_stat_database when it goes idle, at most once
            # a second: wait that second, go idle once, then read.
            time.sleep(1.2)
            execute("SELECT 1")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT active_time FROM pg_stat_database WHERE datname = current_database()"
                )
                return cursor.fetchone()[0]

        shares, walls = [], []
        for _ in range(3):
            before = active_ms()
            began = time.perf_counter()
            for _round in range(VIEWER_ROUNDS):
                for _viewer in range(VIEWERS):
                    for probe in pages:
                        probe.run()
            walls.append((time.perf_counter() - began) * 1000)
            spent = active_ms() - before
            shares.append(100 * spent / (VIEWER_ROUNDS * VIEWER_PERIOD_SECONDS * 1000))
        return {"db_core_percent": shares, "wall_ms": walls}

    def measure_health() -> dict[str, list[float]]:
        monitor_tick()
        health = page("/api/apps/tender/admin/health", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        return samples_of({"tenderops": time_n(health.work, repeat_, check=health.check)})

    def measure_metrics() -> dict[str, list[float]]:
        monitor_tick()
        scrape = page("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
        return samples_of({"tenderops": time_n(scrape.work, repeat_, check=scrape.check)})

    def measure_alert_tick() -> dict[str, list[float]]:
        """The same 200-run tick, alerting (its digest recorded, a delivery queued for a
        configured channel) and quiet (no channel, the kind in its cooldown: no alert)."""
        from django.conf import settings

        from runs.models import Alert, AlertGate

        start_ticks()

        def alerting() -> None:
            add_stuck_runs()
            settings.TENDEROPS_ALERT_WEBHOOK_URL = UNHEARD_WEBHOOK
            AlertGate.objects.all().delete()  # out of its cooldown

        def quiet() -> None:
            add_stuck_runs()
            settings.TENDEROPS_ALERT_WEBHOOK_URL = ""

        before = Alert.objects.count()
        spreads = repeat(
            repeat_,
            {
                "alerting": Probe(monitor_tick, before=alerting, check=all_failed(STUCK)),
                "quiet": Probe(monitor_tick, before=quiet, check=all_failed(STUCK)),
            },
        )
        settings.TENDEROPS_ALERT_WEBHOOK_URL = ""
        assert Alert.objects.count() - before == repeat_, "one alert per alerting tick"
        execute("DELETE FROM django_q_ormq")  # the queued deliveries nobody will run
        return samples_of(spreads)

    def measure_export() -> dict[str, list[float]]:
        """The CSV export of a filter: the fewest whole days, up to yesterday, that hold at
        least EXPORT_ROWS failed runs (times per 10,000 rows, so that sizes compare)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT day, sum(n) OVER (ORDER BY day DESC) FROM (SELECT "
                "(started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM tender_runs "
                "WHERE status = 'failed' AND started_at >= now() - interval '120 days' "
                "AND started_at < current_date GROUP BY 1) AS days ORDER BY day DESC"
            )
            days = cursor.fetchall()
        first, rows = next(((day, int(total)) for day, total in days if total >= EXPORT_ROWS))
        last = days[0][0]
        url = (
            f"/admin/runs/tenderrun/export/?status=failed&started_from={first:%Y-%m-%d}"
            f"&started_to={last:%Y-%m-%d}"
        )

        def download() -> int:
            response = client.get(url)
            assert response.status_code == 200, response.status_code
            text = b"".join(response.streaming_content).decode("utf-8-sig")
            return len(list(csv.reader(io.StringIO(text)))) - 1  # the header

        spread = time_n(download, repeat_, check=expect_rows(rows))
        per_10k = [ms * EXPORT_ROWS / rows for ms in spread.samples]
        return {"tenderops": per_10k, "rows": [rows]}

    sections = {
        "tick_changing": measure_tick_changing,
        "tick_active": measure_tick_active,
        "tick": measure_tick,
        "quiet_tick": measure_quiet_tick,
        "fleet": measure_fleet,
        "prune": measure_prune,
        "list": measure_list,
        "stats": measure_stats,
        "viewers": measure_viewers,
        "health": measure_health,
        "metrics": measure_metrics,
        "alert_tick": measure_alert_tick,
        "export": measure_export,
    }
    # Leftovers of an interrupted earlier run: expired rows, live runs left active.
    execute(RAW_DELETE)
    execute(
        "UPDATE tender_runs SET status = 'success' WHERE id LIKE 'tr\\_act\\_%%' "
        "AND status IN ('pending', 'running')"
    )
    start_ticks()
    # Start from the tables as autovacuum leaves them, without the dead rows an earlier run
    # (--reuse) left behind.
    for table in ("tender_runs", "tender_runs_backend", "tenderops_run_observation"):
        execute(f"VACUUM ANALYZE {table}")
    figures = {}
    for name, measure in sections.items():
        if name not in only:
            continue
        if active_ids and not name.endswith("tick") and not name.startswith("tick"):
            finish_active_runs()  # the live runs of the tick figures are done
            active_ids.clear()
        figures[name] = measure()
    return figures


def memory_probe() -> dict:
    """Peak RSS of a Django process that renders the stats page and prunes 1 M rows."""
    django_setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from runs.maintenance import observe_active_runs, prune_runs
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
    # A fleet-wide crash failed through the API: its answer and its memory stay bounded.
    observe_active_runs()
    with connection.cursor() as cursor:
        cursor.execute(
            STUCK_SQL.format(table="tender_runs"),
            {
                "round": f"memory-{os.getpid()}",
                "count": FLEET,
                "step": "0.1 seconds",
                "prefix": FLEET_PREFIX,
            },
        )
    observe_active_runs()
    answer = client.post(API_CLEANUP, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200 and answer.json()["fixed_count"] >= FLEET, answer.content[:200]
    after_fleet = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    observe_active_runs()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tender_runs WHERE id LIKE %s", [r"tr\_z%"])
    return {
        "start_kib": before,
        "after_stats_kib": after_stats,
        "after_prune_kib": after_prune,
        "after_fleet_kib": after_fleet,
    }


if __name__ == "__main__":
    main()
