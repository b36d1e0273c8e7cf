"""A fleet-wide crash: many runs stuck at once are failed in bounded, guarded, audited batches.

Each batch is its own transaction and audited action; exactly-once and no-overwrite hold across
batches and across cleanups running at once; answers list at most LIST_LIMIT runs with the full
count (issue 16). Sizes are small (batch_size is passed) to keep the tests fast.
"""

import io
import json
import threading
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from runs.alerting.messages import render
from runs.maintenance import cleanup_batches, fail_stuck_runs, monitor_tick
from runs.maintenance.failing import LIST_LIMIT, _next_batch_size
from runs.models import Actor, Alert, FailedRunRecord, MaintenanceAction, TenderRun
from tests.console import list_count
from tests.processes import current_database_url, refused_updates

pytestmark = pytest.mark.postgres

MIN = timedelta(minutes=1)
TOKEN = "fleet-token"


def stuck_runs(project, count: int, label: str = "fleet", kind: str = "extract_risks") -> list[str]:
    """``count`` running runs started 30 minutes ago and more (stuck), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, "
            "meta_json, progress, message) SELECT 'tr_' || md5(%s || g), %s, 'risks', "
            "%s, 'running', now() - interval '30 minutes' - g * interval '1 second',"
            " '{}'::jsonb, 0.5, '提取中...' FROM generate_series(1, %s) AS g RETURNING id",
            [label, project.pk, kind, count],
        )
        return [row[0] for row in cursor.fetchall()]


def audited_run_ids() -> Counter:
    return Counter(FailedRunRecord.objects.values_list("run_id", flat=True))


@pytest.mark.django_db
def test_batches_each_audited_fail_every_run_once_and_list_the_oldest(project):
    ids = stuck_runs(project, 2_500)
    result = fail_stuck_runs(actor=Actor.CLI, batch_size=1_000)
    assert result.fixed_count == 2_500 and result.complete
    assert result.batches == 3
    actions = list(
        MaintenanceAction.objects.order_by("pk").values_list("affected_count", flat=True)
    )
    assert actions == [1_000, 1_000, 500]  # one audited action per batch
    assert audited_run_ids() == Counter(ids)  # every run audited exactly once
    assert not TenderRun.objects.filter(status="running").exists()
    # The answer lists the oldest LIST_LIMIT runs, in order, and counts them all.
    assert len(result.stuck_runs) == LIST_LIMIT and result.truncated
    oldest = TenderRun.objects.filter(pk__in=ids).order_by("started_at", "pk")[:LIST_LIMIT]
    assert [run.id for run in result.stuck_runs] == [run.id for run in oldest]
    payload = result.as_dict()
    assert payload["fixed_count"] == payload["stuck_count"] == 2_500
    assert payload["truncated"] is True and len(payload["stuck_runs"]) == LIST_LIMIT


@pytest.mark.django_db
def test_a_fleets_tick_digest_counts_every_run_and_links_them_all(project, admin_client):
    """Past the listed thousand: the digest counts every failed run by kind, and its link
    (the first batch's action) lists the runs of every batch."""
    risks = stuck_runs(project, 1_800)
    reviews = stuck_runs(project, 400, "late", kind="review")
    result = monitor_tick()
    assert result.fixed_count == 2_200 and result.batches > 1 and result.truncated
    (digest,) = Alert.objects.filter(event="monitor_failed")
    counts = {kind: entry["count"] for kind, entry in digest.facts["kinds"].items()}
    assert counts == {"extract_risks": 1_800, "review": 400}
    assert digest.facts["action_id"] == MaintenanceAction.objects.order_by("pk")[0].pk
    listed = admin_client.get(f"/admin/runs/tenderrun/?audit={result.action_id}").content
    assert list_count(listed.decode()) == 2_200
    link = render(digest, "en").link  # the address the alert sends
    assert list_count(admin_client.get(link).content.decode()) == 2_200
    # The actions' pages say where the cleanup's other batches are.
    first, *later = MaintenanceAction.objects.order_by("pk").values_list("pk", flat=True)
    page = admin_client.get(f"/admin/runs/maintenanceaction/{first}/change/").content.decode()
    continued = (
        f"one more action (#{later[0]})"
        if len(later) == 1
        else f"{len(later)} more actions (#{later[0]} to #{later[-1]})"
    )
    assert f"Continued in {continued}: 2200 runs" in page
    page = admin_client.get(f"/admin/runs/maintenanceaction/{later[-1]}/change/").content.decode()
    assert f'Continues action <a href="/admin/runs/maintenanceaction/{first}/change/">' in page
    # A hand-made parameter that is not the int the cleanup writes is no batch of it.
    odd = MaintenanceAction.objects.create(
        kind="fail_stuck", actor="cli", parameters={"continues_action": float(first)}
    )
    assert odd.pk not in cleanup_batches(first).action_ids
    page = admin_client.get(f"/admin/runs/maintenanceaction/{odd.pk}/change/").content.decode()
    assert "Continues action" not in page
    one_batch = MaintenanceAction.objects.order_by("pk")[1].pk  # a later batch: its own runs
    later = list_count(
        admin_client.get(f"/admin/runs/tenderrun/?audit={one_batch}").content.decode()
    )
    assert 0 < later < 2_200
    assert set(risks + reviews) == set(audited_run_ids())


@pytest.mark.django_db
def test_the_cleanup_page_counts_a_fleet_and_says_how_many_it_fails(project, admin_client):
    stuck_runs(project, 1_500)
    page = admin_client.get("/admin/runs/tenderrun/cleanup/").content.decode()
    assert f"1500 runs are stuck now; the first {LIST_LIMIT} will be marked failed" in page
    assert f"The first {LIST_LIMIT} of them are failed from here" in page


@pytest.mark.django_db
def test_the_deadline_stops_between_batches_and_the_next_call_finishes(project):
    ids = stuck_runs(project, 1_200)
    first = fail_stuck_runs(actor=Actor.SCHEDULE, batch_size=500, deadline_seconds=0)
    assert (first.fixed_count, first.batches, first.complete) == (500, 1, False)
    assert "time limit" in first.message
    assert TenderRun.objects.filter(status="running").count() == 700
    second = fail_stuck_runs(actor=Actor.SCHEDULE, batch_size=500)
    assert (second.fixed_count, second.complete) == (700, True)
    assert audited_run_ids() == Counter(ids)


@pytest.mark.django_db
def test_dry_run_lists_the_first_thousand_and_counts_all(project):
    stuck_runs(project, 1_300)
    preview = fail_stuck_runs(actor=Actor.CLI, dry_run=True)
    assert len(preview.stuck_runs) == LIST_LIMIT and preview.total == 1_300
    assert preview.as_dict()["truncated"] is True and "1300" in preview.message
    assert TenderRun.objects.filter(status="running").count() == 1_300


@pytest.mark.django_db
def test_the_api_answers_with_a_truncated_list_and_the_full_count(project, client, settings):
    settings.TENDEROPS_API_TOKEN = TOKEN
    stuck_runs(project, 1_500)
    response = client.post(
        "/api/apps/tender/admin/cleanup-stuck-runs", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fixed_count"] == 1_500 and body["truncated"] is True
    assert len(body["stuck_runs"]) == LIST_LIMIT
    assert TenderRun.objects.filter(status="failed").count() == 1_500


@pytest.mark.django_db(transaction=True)
def test_the_api_says_batches_before_a_database_error_stay_done(project, client, settings):
    # The second batch meets an error (a trigger of the backend's, a deadlock): the first
    # batch's 1,000 runs stay failed and audited, and the answer must not deny it.
    settings.TENDEROPS_API_TOKEN = TOKEN
    newest = stuck_runs(project, 1_500)[0]
    with refused_updates("tender_runs", f"OLD.id = '{newest}'"):
        response = client.post(
            "/api/apps/tender/admin/cleanup-stuck-runs", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
        )
    assert response.status_code == 503
    assert "stay failed (the audit log lists them)" in response.json()["error"]
    failed = TenderRun.objects.filter(status="failed").count()
    assert failed == 1_000 == FailedRunRecord.objects.count()


@pytest.mark.django_db
def test_the_cli_prints_at_most_the_limit_and_says_how_many(project):
    stuck_runs(project, 1_100)
    out = io.StringIO()
    call_command("cleanup_stuck_runs", "--auto-fix", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("tr_") for line in lines) == LIST_LIMIT
    assert any("1000 of 1100" in line for line in lines)
    assert "Fixed 1100 stuck runs." in lines[-1]
    out = io.StringIO()
    call_command("cleanup_stuck_runs", "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue())["stuck_count"] == 0


def test_batch_sizes_follow_the_pace_within_bounds():
    assert _next_batch_size(1_000, 0.125) == 2_000  # fast: grows, at most doubling
    assert _next_batch_size(8_000, 1.0) == 2_000  # slow: shrinks to the target's size
    assert _next_batch_size(20_000, 0.01) == 20_000  # never above the maximum
    assert _next_batch_size(300, 10.0) == 200  # never below the minimum


@pytest.mark.django_db(transaction=True)
def test_two_cleanups_and_a_worker_at_once_fail_each_run_exactly_once(project):
    """Two cleanups in small batches and a worker finishing runs, released together on 20,000
    stuck runs: each run ends failed (audited once) or a success the worker made (never
    audited, never overwritten)."""
    ids = stuck_runs(project, 20_000)
    finishing = ids[::7]
    barrier = threading.Barrier(3)
    fixed: list[int] = []
    worker_finished: list[str] = []

    def cleanup() -> None:
        try:
            barrier.wait(timeout=60)
            fixed.append(fail_stuck_runs(actor=Actor.SCHEDULE, batch_size=700).fixed_count)
        finally:
            connection.close()

    def worker() -> None:
        with psycopg.connect(current_database_url(), autocommit=True) as conn:
            barrier.wait(timeout=60)
            for start in range(0, len(finishing), 50):
                rows = conn.execute(
                    "UPDATE tender_runs SET status = 'success', finished_at = now() "
                    "WHERE id = ANY(%s) AND status = 'running' RETURNING id",
                    [finishing[start : start + 50]],
                ).fetchall()
                worker_finished.extend(row[0] for row in rows)

    threads = [threading.Thread(target=cleanup) for _ in range(2)]
    threads.append(threading.Thread(target=worker))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(fixed) == 2

    final = dict(TenderRun.objects.filter(pk__in=ids).values_list("pk", "status"))
    successes = {run_id for run_id, status in final.items() if status == "success"}
    failures = {run_id for run_id, status in final.items() if status == "failed"}
    assert successes == set(worker_finished)
    assert successes | failures == set(ids)
    audited = audited_run_ids()
    assert set(audited) == failures and set(audited.values()) == {1}
    assert sum(fixed) == len(failures)
    total = MaintenanceAction.objects.aggregate(n=Sum("affected_count"))["n"]
    assert total == len(failures)


@pytest.mark.django_db
def test_report_mode_records_a_fleet_in_bounded_steps_and_counts_it_all(
    project, settings, monkeypatch
):
    """Report mode read every stuck run each tick (100,000 runs and a list of their ids every
    minute): now it lists the first thousand, counts all by kind, and records at most
    RECORDED_PER_TICK new ones a tick until each is recorded once."""
    from runs.maintenance import reporting

    settings.TENDEROPS_MONITOR_MODE = "report"
    monkeypatch.setattr(reporting, "RECORDED_PER_TICK", 1_000)
    ids = stuck_runs(project, 2_000) + stuck_runs(project, 500, "docx", kind="generate_docx")
    recorded = []
    for _ in range(4):
        result = monitor_tick()
        assert result.total == 2_500 and len(result.stuck_runs) == LIST_LIMIT
        assert result.counts_by_kind == {"extract_risks": 2_000, "generate_docx": 500}
        recorded.append(FailedRunRecord.objects.count())
    assert recorded == [1_000, 2_000, 2_500, 2_500]
    assert audited_run_ids() == Counter(ids)  # each once
    assert set(TenderRun.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"running"}
    (digest,) = Alert.objects.filter(event="stuck_not_failed")
    counts = {kind: entry["count"] for kind, entry in digest.facts["kinds"].items()}
    assert counts == {"extract_risks": 2_000, "generate_docx": 500}
    assert digest.facts["total"] == 2_500
