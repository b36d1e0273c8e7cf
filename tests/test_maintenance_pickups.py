"""The maximum runtime, counted from a worker's pick-up, and runs that tenderops failed and
the backend made active again (runs/maintenance/liveness.py, policy.py).

Time passes here by moving tenderops' own observation stamps back, never by sleeping.
"""

from datetime import timedelta

import pytest
from django.db.models.functions import Now

from runs.maintenance import monitor_tick, observe_active_runs, stuck_runs_queryset, waiting_runs
from runs.maintenance.liveness import _observe_portable
from runs.maintenance.policy import StuckPolicy
from runs.models import FailedRunRecord, RunObservation, TenderRun
from tests.conftest import statuses
from tests.test_maintenance_liveness import (  # its one-minute silence rule, autouse
    MIN,
    one_minute_silence,  # noqa: F401
    silence_for,
    write_progress,
)

pytestmark = pytest.mark.postgres


def test_max_runtime_fails_a_run_that_writes_forever(make_run, settings):
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    forever = make_run(started_ago=61 * MIN, progress=0.1)
    young = make_run(started_ago=59 * MIN, progress=0.1)
    observe_active_runs()
    write_progress(forever, 0.2)
    write_progress(young, 0.2)
    result = monitor_tick()
    assert [(r.id, r.reason) for r in result.stuck_runs] == [(forever.id, "max_runtime")]
    assert statuses(forever, young) == ["failed", "running"]


def running_for(run: TenderRun, span: timedelta) -> None:
    """As if a worker had picked ``run`` up ``span`` ago, as tenderops observed."""
    RunObservation.objects.filter(run_id=run.pk).update(running_since=Now() - span)


def test_the_maximum_runtime_counts_from_the_pick_up_not_the_queue(make_run, settings):
    """Queued past the maximum runtime (a fleet outage), then picked up: the run still
    writing is left alone until it has run that long, then failed as it would be."""
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    queued = make_run(status="pending", started_ago=70 * MIN)
    monitor_tick()  # seen pending
    TenderRun.objects.filter(pk=queued.pk).update(status="running", progress=0.05)
    for step in range(1, 4):
        assert monitor_tick().fixed_count == 0
        write_progress(queued, 0.05 + step / 10)
    assert statuses(queued) == ["running"]
    running_for(queued, 61 * MIN)
    write_progress(queued, 0.9)
    result = monitor_tick()
    assert [(r.id, r.reason) for r in result.stuck_runs] == [(queued.id, "max_runtime")]


def test_a_pick_up_between_the_observation_and_the_statement_is_not_over_the_maximum(
    make_run, settings
):
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    queued = make_run(status="pending", started_ago=70 * MIN)
    observe_active_runs()  # seen pending
    TenderRun.objects.filter(pk=queued.pk).update(status="running", progress=0.05)
    candidates = stuck_runs_queryset(StuckPolicy.configured())
    assert not candidates.filter(pk=queued.pk).exists()  # as the failing statement judges


def test_a_run_requeued_again_and_again_still_meets_the_maximum(make_run, settings):
    """A run a worker takes, crashes on and requeues: its maximum runtime counts from the
    first pick-up (a fresh one at each pick-up let it loop forever; found in review)."""
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    poison = make_run(status="pending", started_ago=70 * MIN)
    monitor_tick()  # seen pending
    TenderRun.objects.filter(pk=poison.pk).update(status="running", message="stint 0")
    assert monitor_tick().fixed_count == 0  # its first pick-up
    running_for(poison, 50 * MIN)  # as if that was 50 minutes ago
    for stint in range(1, 4):
        TenderRun.objects.filter(pk=poison.pk).update(status="pending", message="requeued")
        assert monitor_tick().fixed_count == 0
        TenderRun.objects.filter(pk=poison.pk).update(status="running", message=f"stint {stint}")
        assert monitor_tick().fixed_count == 0
    running_for(poison, 61 * MIN)  # ten more minutes, and a last requeue
    TenderRun.objects.filter(pk=poison.pk).update(status="pending", message="requeued")
    assert monitor_tick().fixed_count == 0
    TenderRun.objects.filter(pk=poison.pk).update(status="running", message="stint 4")
    assert [(r.id, r.reason) for r in monitor_tick().stuck_runs] == [(poison.id, "max_runtime")]


def test_a_run_tenderops_failed_and_the_backend_revived_is_judged_from_its_revival(
    make_run, settings
):
    """Its observation went with the failing; seen active again, it is no run first seen
    hours after its start (failed again at first sight before anyone saw it): it has just
    changed, and a worker has just picked it up."""
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    silent = make_run(started_ago=30 * MIN, progress=0.3)
    endless = make_run(started_ago=90 * MIN, progress=0.3)
    assert {r.id for r in monitor_tick().stuck_runs} == {silent.id, endless.id}
    TenderRun.objects.filter(pk__in=[silent.pk, endless.pk]).update(status="running")
    assert monitor_tick().fixed_count == 0
    assert statuses(silent, endless) == ["running", "running"]
    revived = RunObservation.objects.get(run_id=endless.pk)
    assert revived.changes == 1 and revived.running_since == revived.last_change_at
    silence_for(silent, 65 * MIN / 60)  # then silent past its timeout: failed as silent
    assert [(r.id, r.reason) for r in monitor_tick().stuck_runs] == [(silent.id, "silent")]


def test_a_run_failed_then_queued_again_waits_from_its_requeueing(make_run, settings):
    """Back in the queue: not waiting at once (a false alert), nor failed as waiting."""
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 30
    run = make_run(started_ago=60 * MIN, progress=0.3)
    assert [r.id for r in monitor_tick().stuck_runs] == [run.id]
    TenderRun.objects.filter(pk=run.pk).update(status="pending", progress=0.0, message="排队中")
    assert monitor_tick().fixed_count == 0 and statuses(run) == ["pending"]
    assert not waiting_runs().filter(pk=run.pk).exists()


@pytest.mark.parametrize("observe", [observe_active_runs, _observe_portable])
def test_both_observations_see_a_revival_as_a_change_and_a_pick_up(make_run, observe):
    """PostgreSQL's statement and the portable one (the SQLite demo), on the same rows."""
    revived, fresh = make_run(started_ago=30 * MIN), make_run(started_ago=30 * MIN)
    monitor_tick()
    TenderRun.objects.filter(pk=revived.pk).update(status="running")
    RunObservation.objects.filter(run_id=fresh.pk).delete()
    TenderRun.objects.filter(pk=fresh.pk).update(status="running")
    FailedRunRecord.objects.filter(run_id=fresh.pk).delete()  # as if never failed
    observe()
    seen = {o.run_id: o for o in RunObservation.objects.all()}
    assert seen[revived.pk].changes == 1 and seen[revived.pk].last_change_at is not None
    assert seen[revived.pk].running_since == seen[revived.pk].first_seen_at
    assert (seen[fresh.pk].changes, seen[fresh.pk].last_change_at) == (0, None)
    assert seen[fresh.pk].running_since == fresh.started_at


def test_a_run_first_seen_with_no_failing_behind_it_counts_from_its_start(make_run):
    run = make_run(started_ago=30 * MIN)
    observe_active_runs()
    observation = RunObservation.objects.get(run_id=run.pk)
    assert (observation.changes, observation.last_change_at) == (0, None)
    assert observation.running_since == run.started_at


def test_an_observation_made_before_running_since_counts_from_the_start(make_run, settings):
    """Made by the code before migration 0013 (a tick between migrate and the restart): a
    running run observed without running_since, which no change may ever fill in."""
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    settings.TENDEROPS_STUCK_TIMEOUTS = {"extract_project_info": 600}
    silent = make_run(started_ago=61 * MIN, progress=0.3)
    observe_active_runs()
    RunObservation.objects.filter(run_id=silent.pk).update(running_since=None)
    assert [(r.id, r.reason) for r in monitor_tick().stuck_runs] == [(silent.id, "max_runtime")]


def test_a_run_first_seen_running_counts_from_its_start(make_run, settings):
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    old = make_run(started_ago=61 * MIN, progress=0.1)
    observe_active_runs()
    assert RunObservation.objects.get(run_id=old.pk).running_since == old.started_at
    write_progress(old, 0.2)
    assert [(r.id, r.reason) for r in monitor_tick().stuck_runs] == [(old.id, "max_runtime")]
