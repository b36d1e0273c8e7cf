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
from django.db import connection

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


CROSSING_STEP = 0.02  # seconds between two runs crossing their timeout


def test_workers_finishing_while_monitors_run_never_lose_a_success(project):
    """500 runs cross their timeout one every 20 ms while four monitors loop; workers finish
    half of them within 30 ms either side of that moment, so finishing and failing race."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, "
            "meta_json) SELECT 'tr_' || md5('race' || g), %s, 'risks', 'extract_risks', "
            "'running', now() - interval '10 minutes' + g * %s * interval '1 second', "
            "'{}'::jsonb FROM generate_series(1, 500) AS g RETURNING id",
            [project.pk, CROSSING_STEP],
        )
        run_ids = [row[0] for row in cursor.fetchall()]
    began = time.monotonic()
    finished_by_workers: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    url = current_database_url()
    rng = random.Random(7)
    plan = sorted(
        (index * CROSSING_STEP + rng.uniform(-0.03, 0.03), run_id)
        for index, run_id in enumerate(run_ids, start=1)
        if rng.random() < 0.5
    )

    def worker(share: list[tuple[float, str]]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for moment, run_id in share:
                time.sleep(max(0.0, began + moment - time.monotonic()))  # the random schedule
                done = conn.execute(
                    "UPDATE tender_runs SET status = 'success', finished_at = now(), "
                    "result_json = '{\"ok\": true}' WHERE id = %s AND status = 'running' "
                    "RETURNING id",
                    [run_id],
                ).fetchone()
                if done:
                    with lock:
                        finished_by_workers.append(run_id)

    def monitor() -> None:
        try:
            while not stop.is_set():
                fail_stuck_runs(actor=Actor.SCHEDULE)
        finally:
            connection.close()

    monitors = [threading.Thread(target=monitor) for _ in range(4)]
    workers = [threading.Thread(target=worker, args=(plan[n::3],)) for n in range(3)]
    for thread in monitors + workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    stop.set()
    for thread in monitors:
        thread.join(timeout=120)
    # The last runs may cross their 10 minutes after the last worker and monitor stopped: a
    # final sweep with 9 minutes fails whatever is still running.
    fail_stuck_runs(actor=Actor.SCHEDULE, timeout_minutes=9)

    final = dict(TenderRun.objects.filter(pk__in=run_ids).values_list("pk", "status"))
    successes = {run_id for run_id, status in final.items() if status == "success"}
    failures = {run_id for run_id, status in final.items() if status == "failed"}
    assert successes == set(finished_by_workers)
    assert failures == set(run_ids) - successes
    # Both sides won some of the races (the workers lost some finishes to the monitors),
    # so the test really raced.
    assert 10 <= len(successes) <= len(plan) - 10
    audited = list(FailedRunRecord.objects.values_list("run_id", flat=True))
    assert sorted(audited) == sorted(failures)  # each failure audited exactly once
    assert not successes & set(audited)


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
