"""Races and crashes on real PostgreSQL connections and real processes."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import Q

from runs.maintenance import fail_stuck_runs, observe_active_runs, prune_runs
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from tests.conftest import REPO
from tests.processes import (
    current_database_url,
    statement_gate,
    wait_until,
    waiting_in_this_database,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MIN = timedelta(minutes=1)


def bulk_runs(project, count: int, *, status: str, started_ago: timedelta, label: str) -> list[str]:
    """Insert runs in one statement; return their ids."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, "
            "meta_json, message) SELECT 'tr_' || md5(%s || g), %s, 'risks', 'extract_risks', %s, "
            "now() - %s - g * interval '1 second', '{}'::jsonb, '提取中...' "
            "FROM generate_series(1, %s) AS g RETURNING id",
            [label, project.pk, status, started_ago, count],
        )
        return [row[0] for row in cursor.fetchall()]


def finish_as_worker(conn: psycopg.Connection, run_ids: list[str]) -> list[str]:
    """The tender backend's own guarded finish; returns the runs it really finished."""
    rows = conn.execute(
        "UPDATE tender_runs SET status = 'success', finished_at = now(), "
        "result_json = '{\"ok\": true}' WHERE id = ANY(%s) AND status = 'running' RETURNING id",
        [run_ids],
    ).fetchall()
    return [row[0] for row in rows]


def wait_until_blocked(pid: int, url: str) -> None:
    """Wait (bounded) until backend ``pid`` waits for a row lock."""
    with psycopg.connect(url, autocommit=True) as observer:
        for _attempt in range(600):
            waiting = observer.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for the monitor's lock")


def test_workers_finishing_while_monitors_run_never_lose_a_success(project):
    """Both orders of a finish and a fail, made to happen: a worker that holds its runs while
    the monitor passes (the monitor must skip them), a worker that waits on the monitor's lock
    (its finish must find them failed), and four monitors with a worker released together."""
    url = current_database_url()
    held, waiting, free_for_all = (
        bulk_runs(project, 40, status="running", started_ago=30 * MIN, label=label)
        for label in ("held", "waiting", "free")
    )

    # 1. The worker finishes first and holds the rows until the monitor has passed.
    with psycopg.connect(url) as worker:
        assert len(finish_as_worker(worker, held)) == len(held)  # uncommitted, rows locked
        assert fail_stuck_runs(actor=Actor.SCHEDULE, condition=Q(pk__in=held)).fixed_count == 0
        worker.commit()

    # 2. The monitor fails first and holds the rows while the worker's finish waits on them.
    with psycopg.connect(url, autocommit=True) as worker:
        finished: list[list[str]] = []  # one list once the worker's UPDATE has returned
        with transaction.atomic():
            assert (
                fail_stuck_runs(actor=Actor.SCHEDULE, condition=Q(pk__in=waiting)).fixed_count == 40
            )
            thread = threading.Thread(
                target=lambda: finished.append(finish_as_worker(worker, waiting))
            )
            thread.start()
            wait_until_blocked(worker.info.backend_pid, url)
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert finished == [[]]  # it re-checked the failed rows and finished none

    # 3. Four monitors and a worker released at the same instant on the same runs.
    barrier = threading.Barrier(5)
    worker_finished: list[str] = []

    def monitor() -> None:
        try:
            barrier.wait(timeout=60)
            fail_stuck_runs(actor=Actor.SCHEDULE, condition=Q(pk__in=free_for_all))
        finally:
            connection.close()

    def worker_thread() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait(timeout=60)
            for run_id in free_for_all:
                worker_finished.extend(finish_as_worker(conn, [run_id]))

    threads = [threading.Thread(target=monitor) for _ in range(4)]
    threads.append(threading.Thread(target=worker_thread))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    final = dict(TenderRun.objects.values_list("pk", "status"))
    assert {final[run_id] for run_id in held} == {"success"}
    assert {final[run_id] for run_id in waiting} == {"failed"}
    successes = {run_id for run_id in free_for_all if final[run_id] == "success"}
    assert successes == set(worker_finished)
    assert {final[run_id] for run_id in set(free_for_all) - successes} == {"failed"}
    audited = list(FailedRunRecord.objects.values_list("run_id", flat=True))
    failures = {run_id for run_id, status in final.items() if status == "failed"}
    assert sorted(audited) == sorted(failures)  # each failure audited exactly once
    assert not set(held) & set(audited)


def post_cleanup(base_url: str, token: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/api/apps/tender/admin/cleanup-stuck-runs",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


def test_cli_api_and_routine_monitors_at_once_fail_each_run_once(project, live_server, settings):
    """Two CLI cleanups, a monitor tick and an API cleanup, each held at its first UPDATE of
    tender_runs until all four are there (under load the API failed every run before the
    processes had started), then released together."""
    settings.TENDEROPS_API_TOKEN = "race-token"
    run_ids = bulk_runs(project, 3000, status="running", started_ago=30 * MIN, label="mixed")
    env = {**os.environ, "DATABASE_URL": current_database_url()}
    routine = (
        "import django; django.setup(); from runs.maintenance import monitor_tick; "
        "print(monitor_tick().fixed_count)"
    )
    commands = [
        [sys.executable, "manage.py", "cleanup_stuck_runs", "--auto-fix", "--json"],
        [sys.executable, "manage.py", "cleanup_stuck_runs", "--auto-fix", "--json"],
        [sys.executable, "-c", routine],
    ]
    env["DJANGO_SETTINGS_MODULE"] = "tenderops.settings"
    api_result: dict = {}

    def call_the_api() -> None:
        try:
            api_result.update(post_cleanup(live_server.url, "race-token"))
        except Exception as error:  # shown by the assertion below, not lost in the thread
            api_result["error"] = repr(error)

    api = threading.Thread(target=call_the_api)
    with statement_gate("tender_runs", "UPDATE", 4444) as gate:
        processes = [
            subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            for c in commands
        ]
        api.start()
        wait_until(lambda: waiting_in_this_database(gate) == 4, timeout=120, what="all four")
        gate.execute("SELECT pg_advisory_unlock(4444)")
        outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
        api.join(timeout=120)
    assert all(process.returncode == 0 for process in processes), outputs
    assert "error" not in api_result, api_result
    fixed = [json.loads(outputs[0])["fixed_count"], json.loads(outputs[1])["fixed_count"]]
    fixed += [int(outputs[2].strip().splitlines()[-1]), api_result["fixed_count"]]
    assert sum(fixed) == len(run_ids)
    assert TenderRun.objects.filter(pk__in=run_ids, status="failed").count() == len(run_ids)
    assert FailedRunRecord.objects.count() == len(run_ids)
    assert FailedRunRecord.objects.values("run_id").distinct().count() == len(run_ids)
    actors = set(MaintenanceAction.objects.values_list("actor", flat=True))
    assert actors <= {"cli", "schedule", "api"} and actors


def test_prune_killed_mid_way_deletes_nothing_outside_policy_and_finishes_on_rerun(project):
    expired = bulk_runs(project, 3000, status="failed", started_ago=timedelta(days=40), label="x")
    kept = [
        *bulk_runs(project, 50, status="failed", started_ago=timedelta(days=10), label="young"),
        *bulk_runs(project, 50, status="pending", started_ago=timedelta(days=400), label="p"),
        *bulk_runs(project, 50, status="running", started_ago=timedelta(days=400), label="r"),
        *bulk_runs(project, 50, status="cancelled", started_ago=timedelta(days=400), label="c"),
        *bulk_runs(project, 50, status="success", started_ago=timedelta(days=60), label="s"),
    ]
    env = {**os.environ, "DATABASE_URL": current_database_url()}
    # Three batches delete, the fourth waits at the gate: the prune is killed there, and its
    # session ended as the server ends a dead client's, mid-batch whatever the machine's pace.
    with statement_gate("tender_runs", "DELETE", 4545, after=3) as gate:
        prune = subprocess.Popen(
            [sys.executable, "manage.py", "prune_runs", "--batch-size", "100", "-v", "2"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        wait_until(lambda: waiting_in_this_database(gate) == 1, timeout=120, what="batch 4")
        prune.send_signal(signal.SIGKILL)
        prune.wait(timeout=60)
        gate.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    assert prune.returncode == -signal.SIGKILL

    remaining = set(TenderRun.objects.values_list("pk", flat=True))
    assert set(kept) <= remaining
    deleted = len(set(expired) - remaining)
    assert deleted == 300
    interrupted = MaintenanceAction.objects.get()
    assert interrupted.completed is False
    assert interrupted.affected_count == deleted  # the audit tells how far it got

    result = prune_runs(actor=Actor.CLI, batch_size=100)
    assert result.total == len(expired) - deleted
    assert set(TenderRun.objects.values_list("pk", flat=True)) == set(kept)
    assert MaintenanceAction.objects.filter(completed=True).count() == 1


# Every process waits at the start gate (a shared advisory lock the test holds) and then reads
# the moment the crossings count from: the test sets it once all of them wait, so a machine
# slow to start processes cannot make the workers miss the moments they race for.
START_GATE = "SELECT pg_advisory_lock_shared(4242), pg_advisory_unlock_shared(4242)"

WORKER_SCRIPT = r"""
import random, sys, time
import psycopg
url, seed, gate, plan = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute(gate)
    base = conn.execute("SELECT base FROM race_start").fetchone()[0]
rng = random.Random(seed)
# plan: "<run id>:<crossing second after base>:<what>". "early": a second before the run
# crosses its limit; "write" and "finish": within half a second of it either way.
shift = {"early": lambda: rng.uniform(-1.2, -0.8), "write": lambda: rng.uniform(-0.5, 0.5)}
shift["finish"] = shift["write"]
todo = sorted(
    (base + float(at) + shift[what](), run_id, what)
    for run_id, at, what in (item.split(":") for item in plan)
)
with psycopg.connect(url, autocommit=True) as conn:
    for moment, run_id, what in todo:
        time.sleep(max(0.0, moment - time.time()))  # a worker's pace, not synchronisation
        if what != "finish":
            sql = ("UPDATE tender_runs SET progress = progress + 0.01, message = 'step ' "
                   "|| clock_timestamp() WHERE id = %s AND status = 'running' RETURNING id")
        else:
            sql = ("UPDATE tender_runs SET status = 'success', finished_at = now() "
                   "WHERE id = %s AND status = 'running' RETURNING id")
        with conn.transaction():
            done = conn.execute(sql, [run_id]).fetchone()
            if done:
                conn.execute("INSERT INTO race_writes VALUES (%s, %s, clock_timestamp())",
                             [run_id, "finish" if what == "finish" else "write"])
"""

MONITOR_SCRIPT = (
    "import sys, time, django; django.setup(); from runs.maintenance import monitor_tick\n"
    "from django.db import connection\n"
    "connection.cursor().execute(sys.argv[2])\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: monitor_tick()\n"
)


def waiting_at_the_gate(gate: psycopg.Connection) -> int:
    return gate.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 "
        "AND NOT granted AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())"
    ).fetchone()[0]


def test_signs_of_life_race_across_processes(project, settings):
    """300 running runs cross their one-minute silence limit over ten seconds; three worker
    processes write progress to some and finish others around that moment while four monitor
    processes loop. No run is failed within a minute of a write, no success is overwritten,
    every failure is audited once."""
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 1
    run_ids = bulk_runs(project, 300, status="running", started_ago=30 * MIN, label="alive")
    observe_active_runs()
    rng = random.Random(13)
    offsets = {run_id: index * 10 / len(run_ids) for index, run_id in enumerate(run_ids)}
    plan = [
        f"{run_id}:{at}:{rng.choice(['early', 'write', 'finish', 'none'])}"
        for run_id, at in offsets.items()
    ]
    acting = [item for item in plan if not item.endswith(":none")]
    url = current_database_url()
    env = {**os.environ, "DATABASE_URL": url, "TENDEROPS_STUCK_TIMEOUT_MINUTES": "1"}
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE race_writes (run_id text, what text, at timestamptz)")
        cursor.execute("CREATE TABLE race_start (base float8)")
    gate = psycopg.connect(url, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4242)")
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER_SCRIPT, url, str(n), START_GATE, *acting[n::3]]
            )
            for n in range(3)
        ] + [
            subprocess.Popen(
                [sys.executable, "-c", MONITOR_SCRIPT, "20", START_GATE], cwd=REPO, env=env
            )
            for _ in range(4)
        ]
        wait_until(lambda: waiting_at_the_gate(gate) == 7, timeout=180, what="all 7 processes")
        # Crossings 6 to 16 s after the gate opens: room for every process to get going.
        base = time.time() + 6
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tenderops_run_observation o SET last_change_at = to_timestamp(%s) "
                "- interval '60 s' + make_interval(secs => c.at) "
                "FROM unnest(%s::text[], %s::float8[]) AS c(id, at) WHERE o.run_id = c.id",
                [base, list(offsets), list(offsets.values())],
            )
            cursor.execute("INSERT INTO race_start VALUES (%s)", [base])
        gate.execute("SELECT pg_advisory_unlock(4242)")
        assert [process.wait(timeout=180) for process in processes] == [0] * 7
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.id, r.status, r.finished_at, max(w.at) FILTER (WHERE w.what = 'write'), "
                "bool_or(w.what = 'finish') FROM tender_runs r LEFT JOIN race_writes w "
                "ON w.run_id = r.id WHERE r.id = ANY(%s) GROUP BY r.id",
                [run_ids],
            )
            rows = cursor.fetchall()
    finally:
        gate.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS race_writes, race_start")
    failed = {
        run_id: (finished, last_write)
        for run_id, status, finished, last_write, _f in rows
        if status == "failed"
    }
    for finished, last_write in failed.values():
        assert last_write is None or last_write < finished - MIN  # silent a minute, really
    for run_id, status, _finished, _write, finished_by_worker in rows:
        assert (status == "success") == bool(finished_by_worker), run_id  # no success lost
    audited = list(FailedRunRecord.objects.values_list("run_id", flat=True))
    assert sorted(audited) == sorted(failed)  # every failure audited exactly once
    saved = [r for r in rows if r[1] == "running" and r[3] is not None]
    assert failed and saved  # both outcomes happened: the test raced


def test_report_mode_ticks_side_by_side_record_each_run_once(project, settings):
    """Two report-mode ticks (piled up behind a locked table) each found the runs not yet
    recorded, then both recorded them: every run twice. Made to happen: both ticks' records
    wait at a gate (a trigger on the audit's table) until both are under way."""
    from runs.maintenance import report_stuck_runs

    settings.TENDEROPS_MONITOR_MODE = "report"
    run_ids = bulk_runs(project, 50, status="running", started_ago=30 * MIN, label="shadow")

    def tick() -> None:
        try:
            report_stuck_runs()
        finally:
            connection.close()

    ticks = [threading.Thread(target=tick) for _ in range(2)]
    with statement_gate("tenderops_failed_run", "INSERT", 4343) as gate:
        for thread in ticks:
            thread.start()
        # One at the gate, the other at it or behind the first.
        wait_until(
            lambda: waiting_in_this_database(gate) == 2, timeout=120, what="both ticks under way"
        )
        gate.execute("SELECT pg_advisory_unlock(4343)")
        for thread in ticks:
            thread.join(timeout=120)
    recorded = list(FailedRunRecord.objects.values_list("run_id", flat=True))
    assert sorted(recorded) == sorted(run_ids)  # each once
