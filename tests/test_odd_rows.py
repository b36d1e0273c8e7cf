"""Odd rows of a live table tenderops does not own: shown sanely, skipped by what they would
break, reported; every normal run still judged as usual."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from runs.infinite_timestamps import INFINITY, MINUS_INFINITY
from runs.maintenance import collect_stats, fail_stuck_runs, monitor_tick, prune_runs
from runs.models import Actor, TenderRun
from tests.conftest import statuses

MIN = timedelta(minutes=1)
CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
TOKEN = "odd-rows-token"

pytestmark = pytest.mark.postgres


def set_started_at(run: TenderRun, literal: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tender_runs SET started_at = %s::timestamptz WHERE id = %s", [literal, run.pk]
        )


@pytest.fixture
def normal_stuck(make_run) -> TenderRun:
    return make_run(started_ago=2 * 60 * MIN)


@pytest.mark.parametrize("literal", ["-infinity", "infinity", "1970-01-01", "2999-01-01"])
def test_an_impossible_start_never_stops_the_rescue_of_the_others(
    literal, make_run, normal_stuck, client, settings, capsys
):
    settings.TENDEROPS_API_TOKEN = TOKEN
    odd = make_run()
    set_started_at(odd, literal)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    preview = client.post(f"{CLEANUP}?dry_run=1", **bearer)
    assert preview.status_code == 200
    assert [run["id"] for run in preview.json()["stuck_runs"]] == [normal_stuck.id]
    call_command("cleanup_stuck_runs", "--dry-run")
    assert normal_stuck.id in capsys.readouterr().out

    assert monitor_tick().fixed_count == 1
    assert statuses(normal_stuck, odd) == ["failed", "running"]
    assert client.post(CLEANUP, **bearer).json()["fixed_count"] == 0


def test_infinite_timestamps_load_as_the_extremes(make_run):
    future, past = make_run(), make_run()
    set_started_at(future, "infinity")
    set_started_at(past, "-infinity")
    future.refresh_from_db()
    past.refresh_from_db()
    assert (future.started_at, past.started_at) == (INFINITY, MINUS_INFINITY)


def test_stats_count_impossible_starts_and_stay_whole(make_run, normal_stuck):
    for literal in ("infinity", "-infinity"):
        for status in ("running", "success", "failed"):
            run = make_run(status=status, finished_at=None)
            set_started_at(run, literal)
    stats = collect_stats()
    assert stats.impossible_starts == 6
    assert stats.stuck == 1


def test_prune_never_deletes_a_run_started_at_minus_infinity(make_run):
    odd = make_run(status="failed")
    set_started_at(odd, "-infinity")
    expired = make_run(status="failed", started_ago=timedelta(days=400))
    result = prune_runs(actor=Actor.CLI)
    assert result.total == 1
    assert statuses(odd, expired) == ["failed", "<deleted>"]
    assert prune_runs(actor=Actor.CLI, dry_run=True).total == 0


@pytest.mark.parametrize("kind", ["", "   ", "\t"])
def test_an_empty_kind_counts_as_missing(kind, make_run, settings):
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 60}
    blank = make_run(run_type="review", kind=kind, started_ago=30 * MIN)
    plain = make_run(run_type="review", kind=None, started_ago=30 * MIN)
    assert blank.display_kind == "review"
    assert fail_stuck_runs(actor=Actor.CLI, dry_run=True).stuck_runs == []
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 20}
    found = fail_stuck_runs(actor=Actor.CLI)
    assert sorted(run.kind for run in found.stuck_runs) == ["review", "review"]
    assert statuses(blank, plain) == ["failed", "failed"]
