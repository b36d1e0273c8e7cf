"""Guards of the failing routines that no other test pinned down: each test here failed on a
mutation of one condition (a manual mutation run over runs/maintenance) that the rest of the
suite let pass."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from runs.maintenance import fail_stuck_runs, observe_active_runs
from runs.maintenance.heartbeat import MONITOR
from runs.maintenance.selection import mark_runs_failed, promise_of
from runs.models import (
    Actor,
    FailedRunRecord,
    Heartbeat,
    MaintenanceAction,
    RunObservation,
    TenderRun,
)
from tests.conftest import statuses
from tests.processes import (
    current_database_url,
    statement_gate,
    wait_until,
    waiting_in_this_database,
)
from tests.test_maintenance_liveness import fail_by_the_statement, silence_for, write_progress

MIN = timedelta(minutes=1)
pytestmark = pytest.mark.postgres


def test_runs_sharing_a_start_across_a_batch_boundary_are_all_failed(make_run):
    # Runs a backend enqueued in one transaction share now(): a batch that ends among them
    # must not skip the rest (the next batch starts at its last start, inclusive).
    runs = [make_run(started_ago=30 * MIN) for _ in range(3)]
    TenderRun.objects.filter(pk__in=[r.pk for r in runs]).update(started_at=runs[0].started_at)
    result = fail_stuck_runs(actor=Actor.CLI, batch_size=2)
    assert (result.fixed_count, result.complete) == (3, True)
    assert statuses(*runs) == ["failed"] * 3
    assert not RunObservation.objects.exists()  # the failed runs' observations go with them


def test_the_heartbeat_counts_every_batch_of_a_tick(make_run):
    for n in range(15):
        make_run(started_ago=(30 + n) * MIN)
    result = fail_stuck_runs(actor=Actor.SCHEDULE, batch_size=10, heartbeat=MONITOR)
    assert result.batches == 2
    assert Heartbeat.objects.get(name=MONITOR).last_result["fixed_count"] == 15


def test_the_audit_keeps_the_finished_at_it_overwrote(make_run):
    run = make_run(started_ago=30 * MIN)
    fail_stuck_runs(actor=Actor.CLI)
    record = FailedRunRecord.objects.get(run_id=run.pk)
    assert record.previous_status == "running" and record.previous_finished_at is None
    run.refresh_from_db()
    assert run.finished_at is not None


def test_a_maximum_runtime_below_the_timeout_fails_a_run_at_its_maximum(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "silence"
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 300
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    run = make_run(started_ago=90 * MIN)
    observe_active_runs()  # writing all along: only the maximum runtime can fail it
    assert fail_stuck_runs(actor=Actor.CLI).fixed_count == 1
    assert FailedRunRecord.objects.get(run_id=run.pk).reason == "max_runtime"


def test_failing_nothing_writes_no_audit_action(make_run):
    done = make_run(status="success", started_ago=30 * MIN)
    result = mark_runs_failed(TenderRun.objects.filter(pk=done.pk), actor=Actor.USER)
    assert result.failed == []
    assert not MaintenanceAction.objects.exists()


def test_marking_failed_keeps_to_the_promised_runs(make_run):
    promised, joined = make_run(), make_run()  # joined the selection after the page
    mark_runs_failed(TenderRun.objects.all(), actor=Actor.USER, promise=promise_of([promised.pk]))
    assert statuses(promised, joined) == ["failed", "running"]


def test_a_pending_run_that_wrote_after_the_observation_is_not_failed(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "silence"
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 1
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 1
    run = make_run(status="pending", started_ago=30 * MIN)
    observe_active_runs()
    silence_for(run, 5 * MIN)
    write_progress(run, 0.0, "排队中（第 2 位）")  # after the observation, before the statement
    assert fail_by_the_statement() == [] and statuses(run) == ["pending"]


@pytest.mark.django_db(transaction=True)
def test_a_run_written_to_between_the_statements_snapshot_and_its_lock_is_failed(
    make_run, settings
):
    """The failing statement locks a row's latest version, which a worker may have committed
    after the statement's snapshot: updating the row at that version's address found nothing
    the snapshot could see. The run stayed running, the batch came back short, and the
    cleanup reported itself complete. The same held for the failed runs' observations."""
    settings.TENDEROPS_STUCK_RULE = "silence"
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    runs = [make_run(started_ago=(90 + n) * MIN) for n in range(3)]
    observe_active_runs()  # every run writes: only the maximum runtime fails them
    results = []

    def monitor() -> None:
        try:
            results.append(fail_stuck_runs(actor=Actor.SCHEDULE))
        finally:
            connection.close()

    url = current_database_url()
    with (
        statement_gate("tender_runs", "UPDATE", 4747, passes="worker") as gate,
        psycopg.connect(url, autocommit=True, application_name="worker") as worker,
    ):
        thread = threading.Thread(target=monitor)
        thread.start()
        wait_until(lambda: waiting_in_this_database(gate) == 1, timeout=60, what="the gate")
        written = worker.execute(
            "UPDATE tender_runs SET progress = 0.9, message = '生成中...' WHERE id = %s",
            [runs[1].pk],
        ).rowcount
        # An observer's change of another run's observation, committed meanwhile as well.
        observed = worker.execute(
            f"UPDATE {RunObservation._meta.db_table} SET changes = changes + 1 WHERE run_id = %s",
            [runs[2].pk],
        ).rowcount
        gate.execute("SELECT pg_advisory_unlock(4747)")
        thread.join(timeout=60)
    assert (written, observed) == (1, 1) and not thread.is_alive()
    assert (results[0].fixed_count, results[0].complete) == (3, True)
    assert statuses(*runs) == ["failed"] * 3
    assert not RunObservation.objects.exists()  # the failed runs' observations go with them
