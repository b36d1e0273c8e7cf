"""prune_runs: its flags, its prompt on a terminal, and bad arguments that change nothing."""

import io
import json
import re
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from runs.maintenance import db_now
from runs.models import MaintenanceAction, TenderRun
from tests.conftest import statuses
from tests.test_commands import Terminal, run_command


@pytest.fixture
def expired_runs(make_run):
    return [
        make_run(status="failed", started_ago=timedelta(days=40)),
        make_run(status="success", started_ago=timedelta(days=100)),
        make_run(status="success", started_ago=timedelta(days=50)),
    ]


def test_prune_refuses_a_flag_given_twice_with_different_values(expired_runs):
    with pytest.raises(CommandError, match="--failed-days is given more than once"):
        run_command("prune_runs", "--failed-days", "31", "--failed-days", "400")
    assert len(statuses(*expired_runs)) == 3 and "<deleted>" not in statuses(*expired_runs)
    run_command("prune_runs", "--failed-days", "400", "--failed-days", "400", "--dry-run")


def test_prune_command_defaults_and_flags(expired_runs):
    dry = json.loads(run_command("prune_runs", "--dry-run", "--json"))
    assert dry["would_delete"] == {"failed": 1, "success": 1} and dry["dry_run"] is True
    assert "deleted" not in dry  # a script reading it would report deletions that never were
    assert TenderRun.objects.count() == 3
    out = run_command(
        "prune_runs", "--success-days", "45", "--failed-days", "45", "--batch-size", "1"
    )
    assert "Deleted 0 failed and 2 successful runs" in out
    assert statuses(*expired_runs) == ["failed", "<deleted>", "<deleted>"]
    payload = json.loads(run_command("prune_runs", "--json"))
    assert payload["deleted"] == {"failed": 1, "success": 0}


def test_on_a_terminal_the_prune_asks_before_deleting(expired_runs, monkeypatch, settings):
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    with pytest.raises(CommandError, match="Aborted: nothing was changed") as declined:
        run_command("prune_runs")
    assert declined.value.returncode == 1
    assert TenderRun.objects.count() == 3 and not MaintenanceAction.objects.exists()

    class Meanwhile(Terminal):  # a run expires while the operator reads the counts
        def readline(self, *args) -> str:
            kept_for = timedelta(days=settings.TENDEROPS_RETENTION_SUCCESS_DAYS)
            # Expired by the clock now, not by the clock of the counts on the screen.
            TenderRun.objects.filter(pk=expired_runs[2].pk).update(started_at=db_now() - kept_for)
            return "y\n"

    monkeypatch.setattr(sys, "stdin", Meanwhile())
    out = run_command("prune_runs")
    assert "failed: 1 started before" in out and "success: 1 started before" in out
    assert "Delete these 2 runs for good? [y/N]" in out
    assert "Deleted 1 failed and 1 successful runs" in out
    # It deleted what the prompt counted: the counts' cutoffs, not the answer's moment's.
    assert statuses(*expired_runs) == ["<deleted>", "<deleted>", "success"]


def test_the_prune_never_asks_with_yes_a_dry_run_or_without_a_terminal(expired_runs, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal(""))  # an answer would be read as "no"
    assert "would be deleted" in run_command("prune_runs", "--dry-run")
    assert "Deleted 1 failed and 1 successful runs" in run_command("prune_runs", "--yes")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # cron: no terminal
    TenderRun.objects.filter(pk=expired_runs[2].pk).update(status="failed")
    assert "Deleted 1 failed and 0 successful runs" in run_command("prune_runs")
    with pytest.raises(CommandError, match="not allowed with argument"):
        run_command("prune_runs", "--dry-run", "--yes")


@pytest.mark.parametrize(
    "args",
    [
        ["--failed-days", "0"],
        ["--failed-days", "-5"],
        ["--success-days", "abc"],
        ["--batch-size", "0"],
        ["--batch-size", "100000000"],
        ["--failed-days", "99999999"],
        ["--unknown"],
    ],
)
def test_bad_prune_arguments_change_nothing(args, expired_runs):
    with pytest.raises(CommandError):
        run_command("prune_runs", *args)
    assert TenderRun.objects.count() == 3
    assert not MaintenanceAction.objects.exists()


def test_the_prune_names_its_cutoffs_in_the_zone_and_asks_for_one_run_as_one(
    expired_runs, monkeypatch, settings
):
    settings.TIME_ZONE = "Asia/Shanghai"
    TenderRun.objects.filter(pk=expired_runs[1].pk).delete()
    out = run_command("prune_runs", "--dry-run")
    assert re.search(r"success: started before \S+ \S+ \(Asia/Shanghai\)", out), out
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    out = io.StringIO()
    with pytest.raises(CommandError, match="Aborted: nothing was changed"):
        call_command("prune_runs", stdout=out, stderr=io.StringIO())
    assert "Delete this run for good? [y/N]" in out.getvalue()
