"""Stuck-run detection and failing (runs/maintenance/failing.py)."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import Q

from runs.maintenance import InvalidParameter, fail_stuck_runs, mark_runs_failed
from runs.maintenance.selection import promise_of
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from tests.conftest import row_snapshot, statuses, stuck_now

MIN = timedelta(minutes=1)


def ids(runs) -> set[str]:
    return {run.id for run in runs}


def test_global_timeout_from_settings(settings, make_run):
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 15
    old = make_run(started_ago=16 * MIN)
    young = make_run(started_ago=14 * MIN)
    assert ids(stuck_now()) == {old.id}
    assert young.id not in ids(stuck_now())


def test_per_kind_timeouts_override_the_global_one(settings, make_run):
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    settings.TENDEROPS_STUCK_TIMEOUTS = {"generate_docx": 30, "review": 20}
    docx_young = make_run(run_type="docx", kind="generate_docx", started_ago=25 * MIN)
    docx_old = make_run(run_type="docx", kind="generate_docx", started_ago=31 * MIN)
    review_old = make_run(run_type="review", kind="review", started_ago=21 * MIN)
    review_young = make_run(run_type="review", kind="review", started_ago=19 * MIN)
    info_old = make_run(started_ago=11 * MIN)
    # NULL kind: the run_type is the kind to match on.
    legacy_docx = make_run(run_type="generate_docx", kind=None, started_ago=25 * MIN)
    found = ids(stuck_now())
    assert found == {docx_old.id, review_old.id, info_old.id}
    assert not found & {docx_young.id, review_young.id, legacy_docx.id}


def test_explicit_timeout_applies_to_every_kind(settings, make_run):
    settings.TENDEROPS_STUCK_TIMEOUTS = {"generate_docx": 30}
    docx = make_run(run_type="docx", kind="generate_docx", started_ago=6 * MIN)
    assert ids(stuck_now(timeout_minutes=5)) == {docx.id}


def test_kind_filter_matches_coalesced_kind(make_run):
    legacy = make_run(run_type="review", kind=None, started_ago=60 * MIN)
    make_run(run_type="docx", kind="generate_docx", started_ago=60 * MIN)
    assert ids(stuck_now(kinds=["review"])) == {legacy.id}


def test_a_kind_ending_in_non_ascii_whitespace_is_matched_with_it(make_run):
    # The database trims only ASCII whitespace from a kind; so must the kinds asked for.
    ideographic = make_run(kind="review\u3000", started_ago=60 * MIN)
    plain = make_run(kind=" review ", started_ago=60 * MIN)
    assert ids(stuck_now(kinds=["review\u3000"])) == {ideographic.id}
    assert ids(stuck_now(kinds=["review\n"])) == {plain.id}


def test_a_kind_with_only_pending_runs_is_not_called_misspelt_when_pending_runs_can_fail(
    make_run, settings
):
    make_run(status="pending", kind="review", started_ago=5 * MIN)
    assert fail_stuck_runs(actor=Actor.CLI, kinds=["review"]).kinds_not_running == ["review"]
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 40
    assert fail_stuck_runs(actor=Actor.CLI, kinds=["review"]).kinds_not_running == []


@pytest.mark.postgres
def test_boundary_is_judged_on_the_database_clock(make_run):
    short = make_run(started_ago=10 * MIN - timedelta(seconds=30))
    past = make_run(started_ago=10 * MIN + timedelta(seconds=30))
    result = fail_stuck_runs(actor=Actor.CLI)
    assert ids(result.stuck_runs) == {past.id}
    assert statuses(short, past) == ["running", "failed"]


def test_only_running_runs_past_their_timeout_are_touched(make_run):
    targets = [
        make_run(status="pending", started_ago=600 * MIN),
        make_run(status="success", started_ago=600 * MIN),
        make_run(status="failed", started_ago=600 * MIN),
        make_run(status="cancelled", started_ago=600 * MIN),
        make_run(status="RUNNING", started_ago=600 * MIN),
        make_run(status="running", started_ago=-600 * MIN),  # started_at in the future
    ]
    assert fail_stuck_runs(actor=Actor.CLI).fixed_count == 0
    assert statuses(*targets) == ["pending", "success", "failed", "cancelled", "RUNNING", "running"]


def test_failing_sets_status_times_and_texts_and_nothing_else(settings, make_run):
    settings.TENDEROPS_STUCK_ERROR = "超时"
    settings.TENDEROPS_STUCK_MESSAGE = "任务异常终止"
    run = make_run(
        started_ago=30 * MIN,
        model_id="qwen-max",
        progress=0.42,
        message="提取中...",
        meta_json={"file": "招标文件.pdf", "nested": {"列表": [1, 2.5, None, "😀"]}},
        result_json={"partial": True},
        platform_job_id="job-7",
    )
    before = row_snapshot(run.id)
    result = fail_stuck_runs(actor=Actor.CLI)
    after = row_snapshot(run.id)
    run.refresh_from_db()
    assert result.fixed_count == 1
    assert before == after
    assert (run.status, run.error, run.message) == ("failed", "超时", "任务异常终止")
    assert run.finished_at is not None and run.finished_at > run.started_at
    assert result.stuck_runs[0].running_minutes == pytest.approx(30, abs=0.2)


def test_audit_keeps_what_was_overwritten(make_run):
    run = make_run(started_ago=30 * MIN, message="风险提取中... 45%", error="earlier warning")
    fail_stuck_runs(actor=Actor.API, username="")
    record = FailedRunRecord.objects.select_related("action").get(run_id=run.id)
    assert record.previous_status == "running"
    assert record.previous_message == "风险提取中... 45%"
    assert record.previous_error == "earlier warning"
    assert record.action.actor == "api"
    assert record.action.kind == "fail_stuck"
    assert record.action.affected_count == 1
    assert record.action.parameters["policy"]["default_minutes"] == 10


def test_dry_run_reports_what_the_real_call_changes(make_run):
    stuck = [make_run(started_ago=n * 15 * MIN) for n in range(1, 4)]
    make_run(started_ago=2 * MIN)
    preview = fail_stuck_runs(actor=Actor.CLI, dry_run=True)
    assert preview.dry_run and preview.fixed_count == 0
    assert statuses(*stuck) == ["running"] * 3
    assert not MaintenanceAction.objects.exists()
    real = fail_stuck_runs(actor=Actor.CLI)
    assert [r.id for r in preview.stuck_runs] == [r.id for r in real.stuck_runs]
    assert real.fixed_count == 3


def test_nothing_stuck_writes_no_audit(make_run):
    make_run(started_ago=MIN)
    assert fail_stuck_runs(actor=Actor.SCHEDULE).fixed_count == 0
    assert not MaintenanceAction.objects.exists()


def test_result_shape_is_the_api_object(make_run):
    make_run(started_ago=20 * MIN)
    payload = fail_stuck_runs(actor=Actor.CLI).as_dict()
    assert set(payload) == {
        "fixed_count",
        "stuck_count",
        "stuck_runs",
        "truncated",
        "complete",
        "message",
        "dry_run",
        "kinds_not_running",
    }
    assert payload["fixed_count"] == 1 and payload["dry_run"] is False
    assert payload["truncated"] is False and payload["complete"] is True
    (run,) = payload["stuck_runs"]
    assert set(run) == {
        "id",
        "project_id",
        "kind",
        "started_at",
        "running_minutes",
        "silent_minutes",
        "reason",
    }
    assert isinstance(run["running_minutes"], float)
    assert "1" in payload["message"]


@pytest.mark.parametrize("bad", [0, -5, "10", "abc", 10**12, True, 1.5])
def test_bad_timeouts_are_refused(bad, make_run):
    run = make_run(started_ago=60 * MIN)
    with pytest.raises(InvalidParameter):
        fail_stuck_runs(actor=Actor.CLI, timeout_minutes=bad)
    assert statuses(run) == ["running"]


def test_mark_failed_skips_finished_and_unknown(make_run):
    runs = [
        make_run(status="running", started_ago=MIN),
        make_run(status="pending", started_ago=MIN),
        make_run(status="success", started_ago=MIN),
        make_run(status="cancelled", started_ago=MIN),
    ]
    result = mark_runs_failed(
        TenderRun.objects.all(), actor=Actor.USER, username="alice", reason="worker restarted"
    )
    assert len(result.failed) == 2 and result.skipped_count == 2
    assert statuses(*runs) == ["failed", "failed", "success", "cancelled"]
    action = MaintenanceAction.objects.get()
    assert (action.username, action.reason, action.kind) == (
        "alice",
        "worker restarted",
        "mark_failed",
    )
    assert sorted(FailedRunRecord.objects.values_list("previous_status", flat=True)) == [
        "pending",
        "running",
    ]


def test_a_listed_run_failed_then_deleted_counts_as_failed_not_gone(make_run):
    from runs.maintenance.selection import gone_of_the_rest

    failed, deleted = make_run(started_ago=30 * MIN), make_run(started_ago=30 * MIN)
    TenderRun.objects.filter(pk=deleted.pk).delete()
    result = fail_stuck_runs(actor=Actor.USER, condition=Q(pk__in=[failed.pk, deleted.pk]))
    TenderRun.objects.filter(pk=failed.pk).delete()  # after the failing, before the count
    assert result.fixed_count == 1
    assert gone_of_the_rest([failed.pk, deleted.pk], result) == 1


def test_a_promised_run_that_left_the_selection_meanwhile_is_counted_skipped(make_run):
    # "Select all" on status=running; before the operator confirms, the monitor fails one
    # run and the backend deletes another: neither may vanish from the operator's message.
    kept, failed_meanwhile, deleted = (make_run(started_ago=MIN) for _ in range(3))
    TenderRun.objects.filter(pk=failed_meanwhile.pk).update(status="failed")
    TenderRun.objects.filter(pk=deleted.pk).delete()
    result = mark_runs_failed(
        TenderRun.objects.filter(status="running"),
        promise=promise_of([kept.pk, failed_meanwhile.pk, deleted.pk]),
        actor=Actor.USER,
    )
    assert [run.id for run in result.failed] == [kept.pk]
    assert (result.skipped_count, result.gone_count) == (1, 1)


# --- concurrency, on real PostgreSQL connections -------------------------------------------


def raw_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_run_finished_after_the_list_was_read_keeps_success(make_run):
    stuck = make_run(started_ago=30 * MIN)
    other = make_run(started_ago=30 * MIN)
    listed = stuck_now()
    assert ids(listed) == {stuck.id, other.id}
    with raw_connection() as worker:
        worker.execute(
            "UPDATE tender_runs SET status = 'success', finished_at = now(), result_json = %s "
            "WHERE id = %s",
            ['{"ok": true}', stuck.id],
        )
    result = fail_stuck_runs(actor=Actor.CLI, condition=Q(pk__in=[run.id for run in listed]))
    assert ids(result.stuck_runs) == {other.id}
    assert statuses(stuck, other) == ["success", "failed"]
    assert not FailedRunRecord.objects.filter(run_id=stuck.id).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_finishing_during_the_update_wins(make_run):
    """The worker holds the row (its UPDATE not yet committed) while the monitor fails."""
    run = make_run(started_ago=30 * MIN)
    bystander = make_run(started_ago=30 * MIN)
    with raw_connection() as worker:
        worker.autocommit = False
        worker.execute("UPDATE tender_runs SET status = 'success' WHERE id = %s", [run.id])
        result = fail_stuck_runs(actor=Actor.SCHEDULE)
        worker.commit()
    assert ids(result.stuck_runs) == {bystander.id}
    assert statuses(run, bystander) == ["success", "failed"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_cleanups_fail_each_run_exactly_once(make_run):
    runs = [make_run(started_ago=(20 + n) * MIN) for n in range(30)]
    first_holds_locks = threading.Event()
    second_done = threading.Event()
    results = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = fail_stuck_runs(actor=Actor.SCHEDULE)
                first_holds_locks.set()
                second_done.wait(timeout=30)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_holds_locks.wait(timeout=30)
            results["second"] = fail_stuck_runs(actor=Actor.CLI)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["first"].fixed_count + results["second"].fixed_count == len(runs)
    assert statuses(*runs) == ["failed"] * len(runs)
    per_run = FailedRunRecord.objects.values_list("run_id", flat=True)
    assert sorted(per_run) == sorted(run.id for run in runs)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cleanups_started_together_fail_each_run_exactly_once(make_run):
    runs = [make_run(started_ago=(20 + n) * MIN) for n in range(200)]
    start = threading.Barrier(4)
    counts = []

    def monitor() -> None:
        try:
            start.wait(timeout=30)
            counts.append(fail_stuck_runs(actor=Actor.SCHEDULE).fixed_count)
        finally:
            connection.close()

    threads = [threading.Thread(target=monitor) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == len(runs)
    assert FailedRunRecord.objects.count() == len(runs)
    assert FailedRunRecord.objects.values("run_id").distinct().count() == len(runs)
    assert MaintenanceAction.objects.filter(affected_count__gt=0).count() == len(
        [c for c in counts if c]
    )


def test_marking_an_empty_selection_failed_changes_nothing(make_run):
    """An empty queryset (``.none()``) raised EmptyResultSet as its SQL was written."""
    run = make_run(status="running")
    result = mark_runs_failed(TenderRun.objects.none(), actor=Actor.USER)
    assert (result.failed, result.skipped_count) == ([], 0)
    assert statuses(run) == ["running"] and not MaintenanceAction.objects.exists()
