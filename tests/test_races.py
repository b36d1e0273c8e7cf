"""Races and crashes on real PostgreSQL connections and real processes."""

import json
import os
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

from runs.maintenance import fail_stuck_runs, prune_runs
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from tests.conftest import REPO
from tests.processes import current_database_url

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
        assert fail_stuck_runs(actor=Actor.SCHEDULE, run_ids=held).fixed_count == 0
        worker.commit()

    # 2. The monitor fails first and holds the rows while the worker's finish waits on them.
    with psycopg.connect(url, autocommit=True) as worker:
        finished: list[str] = []
        with transaction.atomic():
            assert fail_stuck_runs(actor=Actor.SCHEDULE, run_ids=waiting).fixed_count == 40
            thread = threading.Thread(
                target=lambda: finished.extend(finish_as_worker(worker, waiting))
            )
            thread.start()
            wait_until_blocked(worker.info.backend_pid, url)
        thread.join(timeout=60)
        assert finished == []  # it re-checked the failed rows and finished none

    # 3. Four monitors and a worker released at the same instant on the same runs.
    barrier = threading.Barrier(5)
    worker_finished: list[str] = []

    def monitor() -> None:
        try:
            barrier.wait(timeout=60)
            fail_stuck_runs(actor=Actor.SCHEDULE, run_ids=free_for_all)
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
    processes = [
        subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for c in commands
    ]
    api_result = post_cleanup(live_server.url, "race-token")
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
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
    prune = subprocess.Popen(
        [sys.executable, "manage.py", "prune_runs", "--batch-size", "100", "-v", "2"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    for line in prune.stderr:
        if line.startswith("batch 3:"):
            prune.send_signal(signal.SIGKILL)
            break
    prune.wait(timeout=60)
    assert prune.returncode == -signal.SIGKILL

    remaining = set(TenderRun.objects.values_list("pk", flat=True))
    assert set(kept) <= remaining
    deleted = len(set(expired) - remaining)
    assert 300 <= deleted < len(expired)
    interrupted = MaintenanceAction.objects.get()
    assert interrupted.completed is False
    assert interrupted.affected_count == deleted  # the audit tells how far it got

    result = prune_runs(actor=Actor.CLI, batch_size=100)
    assert result.total == len(expired) - deleted
    assert set(TenderRun.objects.values_list("pk", flat=True)) == set(kept)
    assert MaintenanceAction.objects.filter(completed=True).count() == 1
