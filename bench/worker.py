"""The measuring worker of bench/run.py: one process per size, inside Django, every figure
measured several times with tenderops and its raw-SQL baseline interleaved (bench/timing.py).
bench/run.py runs it as a child and reads the JSON it prints.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable

from bench.scenario import (
    ACTIVE,
    ACTIVE_SQL,
    EXPIRED,
    EXPIRED_PAGES_SQL,
    EXPIRED_SQL,
    FLEET,
    FLEET_PREFIX,
    FLEET_REPEAT,
    PRUNE_DAYS,
    PRUNE_REPEAT,
    RAW_DELETE,
    RAW_TICK,
    STUCK,
    STUCK_SQL,
    UNHEARD_WEBHOOK,
    VIEWER_PERIOD_SECONDS,
    VIEWER_ROUNDS,
    VIEWERS,
    django_setup,
)
from bench.timing import Probe, repeat, samples_of, timed


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
    from django.db import connection
    from django.http import JsonResponse

    from bench.pages import Pages
    from runs.demo_data import seeded_run_ids
    from runs.maintenance import fail_stuck_runs, monitor_tick, observe_active_runs, prune_runs
    from runs.maintenance.liveness import vacuum_observations
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
            cursor.execute(ACTIVE_SQL, {"label": f"{os.getpid()}_{next(rounds)}", "count": ACTIVE})
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
                # The next tick's observation: before the failing batches forgot their runs'
                # observations, it forgot all 100,000 in one transaction (up to 1.2 s loaded).
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
        # The late-finish sweep vacuums the observations' table within five minutes of the
        # fleet's: without it, the table kept the 100,000 deleted observations' 5,502 pages
        # for 80 rows, and every later quiet tick read them all (the ticks beside the
        # viewers: 7.9 ms, not 4.9).
        observe_active_runs()
        vacuum_observations()
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

    def measure_viewers() -> dict[str, list[float]]:
        """Ten browsers refreshing the runs list and the stats page every 10 s for two
        minutes: the same 240 requests, sent back to back, and the database's own busy time
        for them (pg_stat_database.active_time), as a share of one core over two minutes."""
        refreshed = [
            pages.probe("/admin/runs/tenderrun/"),
            pages.probe("/admin/runs/tenderrun/stats/"),
        ]

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

        shares, walls, ticks = [], [], []
        if not active_ids:
            start_active_runs()  # the monitor's live runs, as for the quiet tick figure
        for _ in range(3):
            before = active_ms()
            began = time.perf_counter()
            for _round in range(VIEWER_ROUNDS):
                for _viewer in range(VIEWERS):
                    for probe in refreshed:
                        probe.run()
                # The monitor ticks meanwhile (a quiet tick, after each round of requests).
                ticks.append(timed(monitor_tick)[0])
            walls.append((time.perf_counter() - began) * 1000)
            spent = active_ms() - before
            shares.append(100 * spent / (VIEWER_ROUNDS * VIEWER_PERIOD_SECONDS * 1000))
        finish_active_runs()
        active_ids.clear()
        return {"db_core_percent": shares, "wall_ms": walls, "tick_ms": ticks}

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

    pages = Pages(repeat_, execute)
    sections = {
        "tick_changing": measure_tick_changing,
        "tick_active": measure_tick_active,
        "tick": measure_tick,
        "quiet_tick": measure_quiet_tick,
        "fleet": measure_fleet,
        "prune": measure_prune,
        "list": pages.list,
        "stats": pages.stats,
        "viewers": measure_viewers,
        "health": pages.health,
        "metrics": pages.metrics,
        "alert_tick": measure_alert_tick,
        "export": pages.export,
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
