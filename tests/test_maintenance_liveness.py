"""Signs of life (runs/maintenance/liveness.py and the silence rule in policy.py).

Time passes here by moving tenderops' own observation stamps back (as if the clock had moved
on), never by sleeping.
"""

from datetime import timedelta

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db.models import F
from django.db.models.functions import Now
from django.test import Client

from runs.admin.display import why_failed
from runs.maintenance import (
    fail_stuck_runs,
    late_finish_tick,
    late_finishes,
    monitor_health,
    monitor_tick,
    observe_active_runs,
    silent_runs,
    stuck_runs_queryset,
    waiting_runs,
)
from runs.maintenance.liveness import liveness_by_kind
from runs.maintenance.policy import StuckPolicy
from runs.maintenance.selection import _fail_runs
from runs.models import Actor, FailedRunRecord, MaintenanceAction, RunObservation, TenderRun
from tests.conftest import silent_waiting_and_late, statuses
from tests.processes import current_database_url

MIN = timedelta(minutes=1)

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def one_minute_silence(settings):
    settings.TENDEROPS_STUCK_RULE = "silence"
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 1
    settings.TENDEROPS_MAX_RUN_MINUTES = 240


def write_progress(run: TenderRun, progress: float, message: str = "提取中...") -> None:
    TenderRun.objects.filter(pk=run.pk).update(progress=progress, message=message)


def fail_by_the_statement() -> list:
    """The failing statement alone, on the stuck runs as the last observation saw them."""
    return _fail_runs(
        stuck_runs_queryset(StuckPolicy.configured()),
        action_kind=MaintenanceAction.Kind.FAIL_STUCK,
        actor=Actor.SCHEDULE,
        username="",
        message="x",
        parameters={},
    )


def silence_for(run: TenderRun, span: timedelta) -> None:
    """As if ``span`` had passed since tenderops last saw the run change."""
    RunObservation.objects.filter(run_id=run.pk).update(last_change_at=Now() - span)


def test_a_run_that_keeps_writing_progress_is_never_failed_by_silence(make_run):
    run = make_run(started_ago=30 * MIN, progress=0.1)
    observe_active_runs()
    for step in range(2, 8):
        write_progress(run, step / 10)
        assert monitor_tick().fixed_count == 0
        assert statuses(run) == ["running"]
    assert RunObservation.objects.get(run_id=run.pk).changes == 6


def test_under_the_age_rule_the_same_run_is_failed_on_the_first_tick(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "age"
    run = make_run(started_ago=30 * MIN, progress=0.1)
    observe_active_runs()
    write_progress(run, 0.2)
    result = monitor_tick()
    assert [r.id for r in result.stuck_runs] == [run.id] and result.stuck_runs[0].reason == "age"


def test_once_silent_it_is_failed_by_the_first_tick_past_the_timeout_never_before(make_run):
    run = make_run(started_ago=30 * MIN, progress=0.1)
    observe_active_runs()
    write_progress(run, 0.5)
    observe_active_runs()  # the last change it will ever make
    silence_for(run, timedelta(seconds=55))
    assert monitor_tick().fixed_count == 0
    silence_for(run, timedelta(seconds=65))
    result = monitor_tick()
    assert result.fixed_count == 1
    (failed,) = result.stuck_runs
    assert failed.reason == "silent" and 1.0 <= failed.silent_minutes < 1.5
    record = FailedRunRecord.objects.get(run_id=run.pk)
    assert (record.reason, record.action.kind) == ("silent", "fail_stuck")
    assert record.silent_minutes == failed.silent_minutes


def test_a_run_picked_up_after_waiting_is_judged_from_its_pick_up(make_run, settings):
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    queued = make_run(status="pending", started_ago=20 * MIN)
    monitor_tick()  # seen pending
    TenderRun.objects.filter(pk=queued.pk).update(status="running", progress=0.0)
    assert monitor_tick().fixed_count == 0
    assert statuses(queued) == ["running"]


def test_a_run_first_seen_long_silent_is_failed_at_first_sight(make_run, settings):
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    old = make_run(started_ago=3 * 60 * MIN, progress=0.4)
    assert not RunObservation.objects.exists()
    assert [r.id for r in monitor_tick().stuck_runs] == [old.id]


def test_the_failing_statement_rechecks_the_fingerprint_on_the_locked_row(make_run):
    """A worker writes between the observation and the failing statement: not failed."""
    run = make_run(started_ago=30 * MIN, progress=0.1)
    observe_active_runs()
    silence_for(run, 5 * MIN)
    write_progress(run, 0.9)  # after the observation, before the statement
    assert fail_by_the_statement() == [] and statuses(run) == ["running"]


def test_a_failed_run_s_observation_goes_with_the_failing(make_run):
    """Forgotten by the statement that fails the run, not left to the next observation (a
    fleet's 100,000 were one transaction of up to 1.2 s there)."""
    silent, alive = make_run(started_ago=30 * MIN), make_run(started_ago=MIN / 4)
    observe_active_runs()
    silence_for(silent, 5 * MIN)
    assert [r.id for r in fail_by_the_statement()] == [silent.id]
    assert list(RunObservation.objects.values_list("run_id", flat=True)) == [alive.pk]


@pytest.mark.django_db(transaction=True)
def test_an_observation_held_by_another_writer_is_left_to_the_next_observation(make_run):
    """The failing statement skips an observation another transaction holds (an observer
    updating it) instead of waiting: two writers of the same observations in different
    orders would deadlock. The run is failed all the same; the next observation forgets it."""
    held, free = make_run(started_ago=30 * MIN), make_run(started_ago=30 * MIN)
    observe_active_runs()
    silence_for(held, 5 * MIN)
    silence_for(free, 5 * MIN)
    with psycopg.connect(current_database_url()) as observer:
        observer.execute(
            "SELECT 1 FROM tenderops_run_observation WHERE run_id = %s FOR UPDATE", [held.pk]
        )
        assert {r.id for r in fail_by_the_statement()} == {held.id, free.id}
        assert list(RunObservation.objects.values_list("run_id", flat=True)) == [held.pk]
    assert statuses(held, free) == ["failed", "failed"]
    assert observe_active_runs().forgotten == 1
    assert not RunObservation.objects.exists()


def test_observations_follow_the_active_runs_only(make_run):
    running, pending = make_run(), make_run(status="pending")
    done = make_run(status="success")
    observed = observe_active_runs()
    assert observed.changed == 2
    assert set(RunObservation.objects.values_list("run_id", flat=True)) == {running.pk, pending.pk}
    quiet = observe_active_runs()
    assert (quiet.changed, quiet.forgotten) == (0, 0)  # nothing changed, nothing written
    TenderRun.objects.filter(pk=running.pk).update(status="success")
    assert observe_active_runs().forgotten == 1
    assert set(RunObservation.objects.values_list("run_id", flat=True)) == {pending.pk}
    assert done.pk not in set(RunObservation.objects.values_list("run_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_an_observer_that_finds_another_observing_writes_nothing(make_run):
    """The observer's lock, taken by the statement sent with the observation: while another
    transaction holds it, the observation skips, writes no row and answers nothing; once it
    is released, the next one observes."""
    import psycopg

    from runs.maintenance.liveness import OBSERVER_LOCK, StuckCheck
    from tests.processes import current_database_url

    run = make_run(started_ago=MIN)
    check = StuckCheck(("SELECT 1", ()), questions=(("asked", ("SELECT 1", ())),))
    with psycopg.connect(current_database_url()) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [OBSERVER_LOCK])
        skipped = observe_active_runs(check)
    assert skipped.skipped and (skipped.any_stuck, skipped.answers) == (None, {})
    assert not RunObservation.objects.exists()
    observed = observe_active_runs(check)
    assert not observed.skipped
    assert (observed.any_stuck, observed.answers) == (True, {"asked": True})
    assert list(RunObservation.objects.values_list("run_id", flat=True)) == [run.pk]


def test_waiting_runs_are_counted_and_failed_only_when_asked(make_run, settings):
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    waiting = make_run(status="pending", started_ago=45 * MIN)
    fresh = make_run(status="pending", started_ago=5 * MIN)
    observe_active_runs()
    assert list(waiting_runs().values_list("pk", flat=True)) == [waiting.pk]
    health = monitor_health().as_dict()
    assert health["waiting_count"] == 1 and health["oldest_active_silence_seconds"] >= 45 * 60
    assert monitor_tick().fixed_count == 0
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 40
    result = monitor_tick()
    assert [(r.id, r.reason) for r in result.stuck_runs] == [(waiting.id, "waiting")]
    assert statuses(waiting, fresh) == ["failed", "pending"]
    record = FailedRunRecord.objects.get(run_id=waiting.pk)
    assert why_failed(record.reason, record.silent_minutes).startswith("pending for 45")


def test_waiting_runs_are_failed_when_asked_under_the_age_rule_too(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "age"
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 60
    waiting = make_run(status="pending", started_ago=45 * MIN)
    running = make_run(started_ago=90 * MIN)
    assert monitor_tick().fixed_count == 1  # the runbook's rule alone: the running run
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 40
    result = monitor_tick()
    assert [(r.id, r.reason) for r in result.stuck_runs] == [(waiting.id, "waiting")]
    assert statuses(waiting, running) == ["failed", "failed"]


def test_a_run_silent_for_days_is_silent_not_merely_over_the_maximum_runtime(make_run, settings):
    """Both parts of the rule hold for a run dead for days: silence is what the audit, the
    health's silent count and the list's "silent" filter call it."""
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    dead = make_run(started_ago=3 * 24 * 60 * MIN)
    observe_active_runs()
    assert [r.id for r in silent_runs()] == [dead.id]
    assert monitor_health().as_dict()["silent_count"] == 1
    (failed,) = monitor_tick().stuck_runs
    assert (failed.id, failed.reason) == (dead.id, "silent")
    assert FailedRunRecord.objects.get(run_id=dead.id).silent_minutes >= 3 * 24 * 60


def test_health_counts_silent_runs(make_run):
    silent = make_run(started_ago=30 * MIN)
    make_run(started_ago=30 * MIN)
    observe_active_runs()
    assert monitor_health().as_dict()["silent_count"] == 2
    write_progress(silent, 0.3)
    observe_active_runs()
    assert monitor_health().as_dict()["silent_count"] == 1


def test_report_mode_fails_nothing_and_records_each_stuck_run_once(make_run, settings):
    settings.TENDEROPS_MONITOR_MODE = "report"
    stuck = [make_run(started_ago=30 * MIN, message=f"提取中 {n}...") for n in range(3)]
    for _ in range(3):
        result = monitor_tick()
        assert result.dry_run and len(result.stuck_runs) == 3
    assert statuses(*stuck) == ["running"] * 3
    action = MaintenanceAction.objects.get()
    assert action.kind == "would_fail" and action.affected_count == 3
    assert sorted(action.failed_runs.values_list("run_id", flat=True)) == sorted(
        r.pk for r in stuck
    )
    # What each said when recorded, as a failing keeps it (the record showed no message).
    said = action.failed_runs.values_list("run_id", "previous_status", "previous_message")
    assert sorted(said) == sorted((r.pk, "running", r.message) for r in stuck)
    # The CLI and the API still act when asked.
    assert fail_stuck_runs(actor=Actor.CLI).fixed_count == 3


def minutes_pass(minutes: int) -> None:
    """The clock moves on by ``minutes`` (more than a test takes): everything so far
    happened that much earlier."""
    back = minutes * MIN
    TenderRun.objects.update(started_at=F("started_at") - back)
    MaintenanceAction.objects.update(started_at=F("started_at") - back)
    RunObservation.objects.update(
        first_seen_at=F("first_seen_at") - back,
        last_change_at=F("last_change_at") - back,
        running_since=F("running_since") - back,
    )


def test_report_mode_records_a_run_again_when_it_is_stuck_again(make_run, settings):
    """Recorded once ever, a run that wrote again and then went silent again stayed stuck
    without a word; one over the maximum runtime is recorded once however it writes."""
    settings.TENDEROPS_MONITOR_MODE = "report"
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    silent = make_run(started_ago=30 * MIN)
    writing = make_run(started_ago=50 * MIN)
    recorded = FailedRunRecord.objects.values_list("run_id", "reason")
    monitor_tick()
    assert sorted(recorded) == sorted([(silent.pk, "silent"), (writing.pk, "silent")])
    for minute in range(15):  # writing on: past the maximum runtime, recorded as such once
        minutes_pass(1)
        write_progress(writing, 0.5 + minute / 100)
        monitor_tick()
    assert sorted(recorded.filter(run_id=writing.pk)) == [
        (writing.pk, "max_runtime"),
        (writing.pk, "silent"),
    ]
    assert recorded.filter(run_id=silent.pk).count() == 1  # stuck all along: once
    write_progress(silent, 0.5)  # alive after all: not stuck, not recorded
    monitor_tick()
    monitor_tick()
    assert recorded.filter(run_id=silent.pk).count() == 1
    minutes_pass(2)  # silent again past its 1-minute timeout: recorded again, once
    monitor_tick()
    monitor_tick()
    assert recorded.filter(run_id=silent.pk).count() == 2
    assert recorded.filter(run_id=writing.pk).count() == 2


def test_a_run_failed_then_finished_by_its_worker_is_a_late_finish(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "age"
    run = make_run(started_ago=30 * MIN, kind="review", run_type="review")
    other = make_run(started_ago=30 * MIN)
    monitor_tick()
    assert late_finishes().count() == 0
    TenderRun.objects.filter(pk=run.pk).update(status="success")  # the worker was alive
    assert list(late_finishes().values_list("run_id", flat=True)) == [run.pk]
    noted = late_finish_tick()
    assert [record.run_id for record in noted] == [run.pk]
    assert late_finish_tick() == []  # noted once
    assert statuses(other) == ["failed"]
    # Counted per kind (the stats page, /metrics) and listed by the admin's filter.
    assert liveness_by_kind()["review"].late == {"24h": 1, "7d": 1, "30d": 1}
    assert "extract_project_info" not in liveness_by_kind()
    admin = Client()
    admin.force_login(User.objects.create_superuser("boss", "b@example.invalid", "pw"))
    listed = admin.get("/admin/runs/tenderrun/?liveness=late").content.decode()
    assert run.pk in listed and other.pk not in listed


def test_liveness_by_kind_counts_silent_waiting_and_late(make_run, settings):
    settings.TENDEROPS_STUCK_RULE = "age"
    silent_waiting_and_late(make_run)
    assert "generate_docx" not in liveness_by_kind()  # not yet noted by the sweep
    late_finish_tick()
    by_kind = liveness_by_kind()
    assert (by_kind["review"].silent, by_kind["review"].waiting) == (1, 1)
    assert by_kind["generate_docx"].late == {"24h": 1, "7d": 1, "30d": 1}


@pytest.mark.django_db(transaction=True)
def test_the_observation_table_is_vacuumed_off_the_ticks_path(make_run):
    from django.db import connection, transaction

    from runs.maintenance.liveness import vacuum_observations

    def vacuums() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables "
                "WHERE relname = 'tenderops_run_observation'"
            )
            return cursor.fetchone()[0]

    run = make_run(started_ago=2 * MIN)
    observe_active_runs()
    write_progress(run, 0.5)
    observe_active_runs()  # a dead row version left behind
    before = vacuums()
    late_finish_tick()
    assert vacuums() == before + 1
    with transaction.atomic():
        assert vacuum_observations() is False  # VACUUM cannot run in a transaction


@pytest.mark.django_db(transaction=True)
def test_an_observation_table_left_large_by_a_fleet_is_rewritten_small(make_run):
    from django.db import connection

    from runs.maintenance.liveness import vacuum_observations

    def pages() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('tenderops_run_observation') / 8192")
            return cursor.fetchone()[0]

    kept = make_run(started_ago=2 * MIN)
    observe_active_runs()
    with connection.cursor() as cursor:  # a fleet's observations, then forgotten
        cursor.execute(
            "INSERT INTO tenderops_run_observation (run_id, fingerprint, first_seen_at, changes) "
            "SELECT 'tr_fleet_' || g, 'x', now(), 0 FROM generate_series(1, 100000) AS g"
        )
    observe_active_runs()
    assert pages() > 1_000
    vacuum_observations()
    assert pages() < 10
    assert list(RunObservation.objects.values_list("run_id", flat=True)) == [kept.pk]
