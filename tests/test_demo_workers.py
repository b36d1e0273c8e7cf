"""The demo's stand-in workers: live runs write progress and finish, one stays silent."""

import io
import random

import pytest
from django.core.management import CommandError, call_command

from runs.demo_data import seeded_run_ids
from runs.demo_workers import dead_ids, work_once
from runs.models import TenderRun
from runs.vocabulary import RunStatus

LIVE, PENDING = 4, 3


@pytest.fixture
def demo_runs(db) -> dict[str, list[str]]:
    call_command(
        "seed_demo_runs",
        *("--runs", "40", "--stuck", "2", "--live-running", str(LIVE), "--pending", str(PENDING)),
        stdout=io.StringIO(),
    )
    return {"live": seeded_run_ids("live", LIVE), "pending": seeded_run_ids("pending", PENDING)}


def snapshot(ids: list[str]) -> dict[str, tuple]:
    runs = TenderRun.objects.filter(pk__in=ids)
    return {run.pk: (run.status, run.progress, run.message, run.finished_at) for run in runs}


def test_live_runs_write_progress_but_the_dead_workers_run_stays_silent(demo_runs):
    before = snapshot(demo_runs["live"] + demo_runs["pending"])
    work = work_once(random.Random(3))
    after = snapshot(demo_runs["live"] + demo_runs["pending"])
    (dead,) = dead_ids()
    assert dead in demo_runs["live"]
    assert after[dead] == before[dead]
    for run_id in demo_runs["live"]:
        if run_id != dead:
            status, progress, _message, _finished = after[run_id]
            assert status == RunStatus.SUCCESS or progress > before[run_id][1]
    assert work.progressed == LIVE - 1
    picked = [run_id for run_id in demo_runs["pending"] if after[run_id] != before[run_id]]
    assert len(picked) == work.picked_up == work.finished


def test_finished_workers_pick_up_the_pending_runs_until_only_the_dead_one_is_left(demo_runs):
    rng = random.Random(5)
    finished = picked_up = 0
    for _round in range(200):
        work = work_once(rng)
        finished += work.finished
        picked_up += work.picked_up
        if work.progressed == 0:
            break
    runs = snapshot(demo_runs["live"] + demo_runs["pending"])
    (dead,) = dead_ids()
    assert runs[dead][0] == RunStatus.RUNNING
    assert finished == LIVE - 1 + PENDING and picked_up == PENDING
    for run_id, (status, progress, message, finished_at) in runs.items():
        if run_id != dead:
            assert (status, progress, message) == (RunStatus.SUCCESS, 1.0, "完成")
            assert finished_at is not None


def test_a_run_tenderops_failed_is_never_written_again(demo_runs):
    failed = next(run_id for run_id in demo_runs["live"] if run_id not in dead_ids())
    TenderRun.objects.filter(pk=failed).update(status=RunStatus.FAILED, progress=0.42)
    for seed in range(30):
        work_once(random.Random(seed))
    run = TenderRun.objects.get(pk=failed)
    assert (run.status, run.progress) == (RunStatus.FAILED, 0.42)


def test_only_the_demo_seeds_runs_are_written(demo_runs, make_run):
    other = make_run(status=RunStatus.RUNNING, progress=0.5)
    work_once(random.Random(1))
    other.refresh_from_db()
    assert other.progress == 0.5


def test_the_dead_worker_is_mentioned_only_while_its_run_is_silent(demo_runs, settings):
    settings.DEBUG = True
    said = io.StringIO()
    call_command("demo_workers", "--rounds", "1", stdout=said)
    assert "one worker has died" in said.getvalue()
    TenderRun.objects.filter(pk__in=dead_ids()).update(status=RunStatus.FAILED)
    said = io.StringIO()
    call_command("demo_workers", "--rounds", "1", stdout=said)
    assert "Demo workers:" in said.getvalue() and "died" not in said.getvalue()


def test_the_command_refuses_without_debug(demo_runs, settings):
    settings.DEBUG = False
    before = snapshot(demo_runs["live"])
    with pytest.raises(CommandError, match="DJANGO_DEBUG=true"):
        call_command("demo_workers", "--rounds", "1", stdout=io.StringIO())
    assert snapshot(demo_runs["live"]) == before


def test_the_command_says_what_its_workers_did(demo_runs, settings):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("demo_workers", "--rounds", "1", stdout=out)
    assert f"Demo workers: {LIVE - 1} live runs wrote progress" in out.getvalue()


@pytest.mark.parametrize("flags", [["--interval", "0"], ["--rounds", "x"], ["--interval", "9e9"]])
def test_the_command_refuses_bad_flags(db, settings, flags):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="must be"):
        call_command("demo_workers", *flags, stdout=io.StringIO())
