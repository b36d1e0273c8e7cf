"""The management commands: cleanup_stuck_runs, prune_runs, seed_demo_runs."""

import io
import json
import os
import pwd
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from runs.demo_data import seeded_run_ids
from runs.maintenance import fail_stuck_runs
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from tests.conftest import statuses, stuck_now

MIN = timedelta(minutes=1)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_command(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def stuck_and_live(make_run):
    return make_run(started_ago=45 * MIN, message="提取中..."), make_run(started_ago=2 * MIN)


def test_dry_run_lists_and_changes_nothing(stuck_and_live):
    stuck, live = stuck_and_live
    out = run_command("cleanup_stuck_runs", "--dry-run")
    assert stuck.id in out and live.id not in out
    assert stuck.project_id in out and "extract_project_info" in out
    assert "45.0" in out
    assert statuses(stuck, live) == ["running", "running"]
    assert not MaintenanceAction.objects.exists()


def test_the_tables_minutes_line_up_on_the_right(make_run):
    for minutes in (45, 125):
        make_run(started_ago=minutes * MIN)
    header, *rows = run_command("cleanup_stuck_runs", "--dry-run").splitlines()[:3]
    for title in ("silent min", "running min"):
        end = header.index(title) + len(title)
        assert all(row[end - 1].isdigit() and row[end : end + 1] in ("", " ") for row in rows)


def test_the_table_shows_starts_in_the_configured_zone_as_the_admin_does(make_run, settings):
    """It wrote UTC under "started (UTC)": the same run at 07:18 there, 15:18 in the admin."""
    settings.TIME_ZONE = "Asia/Shanghai"
    stuck = make_run(started_ago=45 * MIN)
    header, row = run_command("cleanup_stuck_runs", "--dry-run").splitlines()[:2]
    shown = timezone.localtime(stuck.started_at, ZoneInfo("Asia/Shanghai"))
    assert "started (Asia/Shanghai)" in header and f"{shown:%Y-%m-%d %H:%M:%S}" in row


def test_the_empty_id_is_written_as_empty_quotes(make_run):
    stuck = make_run(started_ago=45 * MIN)
    TenderRun.objects.filter(pk=stuck.pk).update(id="")
    _header, row = run_command("cleanup_stuck_runs", "--dry-run").splitlines()[:2]
    assert row.startswith('"" ') and stuck.project_id in row


def test_auto_fix_fails_and_audits_as_cli(stuck_and_live, make_run, monkeypatch):
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("LOGNAME", "someone-else")
    monkeypatch.delenv("SUDO_USER", raising=False)
    stuck, live = stuck_and_live
    out = run_command("cleanup_stuck_runs", "--auto-fix")
    assert "Fixed 1 stuck run" in out
    assert statuses(stuck, live) == ["failed", "running"]
    action = FailedRunRecord.objects.get().action
    # Who ran it: the process's account (the audit's "user"; it was blank for every command),
    # not the $USER a caller sets.
    account = pwd.getpwuid(os.getuid()).pw_name
    assert (action.actor, action.username) == ("cli", account)
    make_run(status="failed", started_ago=timedelta(days=40))
    run_command("prune_runs", "--failed-days", "31", "--json")
    assert MaintenanceAction.objects.filter(username=account).count() == 2


def test_json_prints_the_api_object(stuck_and_live):
    stuck, _live = stuck_and_live
    payload = json.loads(run_command("cleanup_stuck_runs", "--auto-fix", "--json"))
    assert payload["fixed_count"] == 1 and payload["dry_run"] is False
    assert payload["stuck_runs"][0]["id"] == stuck.id
    preview = json.loads(run_command("cleanup_stuck_runs", "--dry-run", "--json"))
    assert preview == {**preview, "fixed_count": 0, "stuck_runs": [], "dry_run": True}


def test_timeout_and_kind_flags(make_run):
    info = make_run(started_ago=6 * MIN)
    review = make_run(run_type="review", kind=None, started_ago=6 * MIN)
    docx = make_run(run_type="docx", kind="generate_docx", started_ago=6 * MIN)
    out = run_command(
        "cleanup_stuck_runs",
        "--timeout",
        "5",
        "--kind",
        "review",
        "--kind",
        "generate_docx",
        "--auto-fix",
    )
    assert "Fixed 2 stuck runs" in out
    assert statuses(info, review, docx) == ["running", "failed", "failed"]


def test_a_misspelt_kind_is_said_to_have_no_running_run(stuck_and_live):
    out = run_command("cleanup_stuck_runs", "--kind", "extract_project_inf", "--dry-run")
    assert "No stuck runs found; nothing changed." in out
    assert "No run of kind “extract_project_inf” is running: is the kind spelt right?" in out
    two = ("--kind", "extract_project_inf", "--kind", "reviw", "--dry-run")
    out = run_command("cleanup_stuck_runs", *two)
    assert "No run of the kinds “extract_project_inf”, “reviw” is running: are they" in out


def test_without_terminal_it_refuses_with_exit_2(stuck_and_live, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    with pytest.raises(CommandError) as refused:
        run_command("cleanup_stuck_runs")
    assert refused.value.returncode == 2
    assert "--dry-run" in str(refused.value) and "--auto-fix" in str(refused.value)
    assert statuses(*stuck_and_live) == ["running", "running"]


def test_on_a_terminal_yes_fails_the_listed_runs(stuck_and_live, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    out = run_command("cleanup_stuck_runs")
    assert "Mark this run failed? [y/N]" in out
    assert statuses(*stuck_and_live) == ["failed", "running"]


def test_on_a_terminal_what_the_prompt_listed_and_did_not_fail_is_said(make_run, monkeypatch):
    listed = [make_run(started_ago=(45 + n) * MIN) for n in range(3)]

    class Meanwhile(Terminal):  # while the operator reads the list
        def readline(self, *args) -> str:
            TenderRun.objects.filter(pk=listed[0].pk).delete()
            TenderRun.objects.filter(pk=listed[1].pk).update(status="success")
            return "y\n"

    monkeypatch.setattr(sys, "stdin", Meanwhile())
    out = run_command("cleanup_stuck_runs")
    assert "Fixed 1 stuck run." in out
    assert "Of the 3 listed: 1 no longer stuck" in out and "1 deleted meanwhile" in out


def test_on_a_terminal_a_run_failed_and_revived_while_listed_is_not_failed_again(
    make_run, monkeypatch, settings
):
    """The prompt promised to fail the runs as it listed them, as the admin's pages do: one
    the monitor failed and a worker revived while the operator read is no longer promised."""
    settings.TENDEROPS_STUCK_RULE = "age"  # revived, it is stuck again at once
    revived, other = make_run(started_ago=45 * MIN), make_run(started_ago=46 * MIN)

    class Meanwhile(Terminal):
        def readline(self, *args) -> str:
            fail_stuck_runs(actor=Actor.SCHEDULE, condition=Q(pk__in=[revived.pk]))  # the monitor
            TenderRun.objects.filter(pk=revived.pk).update(status="running", finished_at=None)
            return "y\n"

    monkeypatch.setattr(sys, "stdin", Meanwhile())
    out = run_command("cleanup_stuck_runs")
    assert "Fixed 1 stuck run." in out and "Of the 2 listed: 1 no longer stuck" in out
    assert statuses(revived, other) == ["running", "failed"]
    assert FailedRunRecord.objects.filter(run_id=revived.pk).count() == 1


def test_the_prompt_counts_several_runs_and_shows_a_blank_kind_as_a_dash(make_run, monkeypatch):
    for _ in range(2):
        make_run(started_ago=45 * MIN, kind=None, run_type="")
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    out = run_command("cleanup_stuck_runs")
    assert "Mark these 2 runs failed? [y/N]" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("tr_")]
    assert len(rows) == 2 and all(row[2] == "-" for row in rows)


def test_on_a_terminal_with_nothing_stuck_it_says_so_without_a_dry_run(make_run, monkeypatch):
    make_run(started_ago=2 * MIN)
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    out = run_command("cleanup_stuck_runs")
    assert out.strip() == "No stuck runs found; nothing changed."
    payload = json.loads(run_command("cleanup_stuck_runs", "--json"))
    assert payload["dry_run"] is False and payload["fixed_count"] == 0  # no dry run asked


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_on_a_terminal_anything_but_yes_changes_nothing(answer, stuck_and_live, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    with pytest.raises(CommandError) as aborted:
        run_command("cleanup_stuck_runs")
    assert aborted.value.returncode == 1
    assert statuses(*stuck_and_live) == ["running", "running"]


class InterruptedTerminal(Terminal):
    def readline(self, *args) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_prompt_is_an_interruption_in_one_line(stuck_and_live, monkeypatch):
    monkeypatch.setattr(sys, "stdin", InterruptedTerminal())
    with pytest.raises(CommandError, match="Interrupted: nothing was changed") as aborted:
        run_command("cleanup_stuck_runs")
    assert aborted.value.returncode == 130  # as documented for Ctrl-C, not 1 (declined)
    assert statuses(*stuck_and_live) == ["running", "running"]


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--timeout", "0", "--auto-fix"], "between 1 and"),
        (["--timeout", "-5", "--auto-fix"], "between 1 and"),
        (["--timeout", "abc", "--auto-fix"], "whole number"),
        (["--timeout", "1e3", "--auto-fix"], "whole number"),
        (["--timeout", "99999999999", "--auto-fix"], "between 1 and"),
        (["--timeout", "", "--auto-fix"], "whole number"),
        (["--timeout", "１０", "--auto-fix"], "whole number"),  # full-width digits
        (["--timeout", "9" * 30, "--auto-fix"], "between 1 and"),
        (["--kind", "", "--auto-fix"], "kind"),
        (["--kind", "x" * 201, "--auto-fix"], "kind"),
        (["--dry-run", "--auto-fix"], "not allowed with"),
        (["--auto-fix", "--bogus"], "unrecognized"),
        (["--timeout", "10", "--timeout", "20", "--auto-fix"], "more than once"),
    ],
)
def test_bad_cleanup_arguments_change_nothing(args, complaint, stuck_and_live):
    with pytest.raises(CommandError, match=complaint):
        run_command("cleanup_stuck_runs", *args)
    assert statuses(*stuck_and_live) == ["running", "running"]
    assert not MaintenanceAction.objects.exists()


def test_seed_makes_the_promised_mix(db):
    out = run_command(
        "seed_demo_runs", "--runs", "600", "--stuck", "7", "--live-running", "3", "--pending", "2"
    )
    assert "Seeded" in out
    assert TenderRun.objects.count() == 600
    assert TenderRun.objects.filter(status="pending").count() == 2
    assert TenderRun.objects.filter(status="running").count() == 10
    assert {run.id for run in stuck_now()} == set(seeded_run_ids("stuck", 7))
    null_kind = TenderRun.objects.filter(kind__isnull=True).count()
    assert 150 <= null_kind <= 250
    finished = TenderRun.objects.filter(status__in=["success", "failed"]).count()
    assert finished == 588
    assert TenderRun.objects.filter(status="failed", error__isnull=True).count() == 0
    assert TenderRun.objects.exclude(id__regex=r"^tr_[0-9a-f]{32}$").count() == 0


def test_seed_refuses_a_table_with_runs_unless_appending(make_run, settings):
    settings.DEBUG = True
    make_run()
    with pytest.raises(CommandError, match="--append"):
        run_command("seed_demo_runs", "--runs", "10")
    run_command("seed_demo_runs", "--runs", "30", "--append", "--random-seed", "2")
    assert TenderRun.objects.count() == 31
    with pytest.raises(CommandError, match="fewer than") as fewer:
        run_command("seed_demo_runs", "--runs", "10", "--append")
    assert fewer.value.returncode == 2  # bad usage, as a bad flag
    assert TenderRun.objects.count() == 31
    with pytest.raises(CommandError, match="^Error: --stuck must be between"):
        run_command("seed_demo_runs", "--stuck", "-1", "--append")


def test_seed_appends_only_with_debug_on(make_run, settings):
    """--append is for a demo's table: on a live one, its fake stuck runs would be failed,
    alerted and counted as the backend's."""
    make_run()
    with pytest.raises(CommandError, match="only with DJANGO_DEBUG=true") as refused:
        run_command("seed_demo_runs", "--runs", "30", "--append")
    assert refused.value.returncode == 2 and TenderRun.objects.count() == 1


def test_seed_appends_again_and_again_on_the_same_table(db, settings):
    settings.DEBUG = True
    run_command("seed_demo_runs", "--runs", "40")
    run_command("seed_demo_runs", "--runs", "40", "--append")
    run_command("seed_demo_runs", "--runs", "40", "--append")
    assert TenderRun.objects.count() == 120


def test_seed_with_a_seed_already_used_refuses_and_adds_nothing(db, settings):
    settings.DEBUG = True
    run_command("seed_demo_runs", "--runs", "40", "--random-seed", "5")
    with pytest.raises(CommandError, match="--random-seed 5"):
        run_command("seed_demo_runs", "--runs", "40", "--append", "--random-seed", "5")
    assert TenderRun.objects.count() == 40


@pytest.mark.postgres  # a PL/pgSQL trigger makes the error
@pytest.mark.django_db(transaction=True)
def test_a_database_error_part_way_says_the_committed_batches_stay_done(make_run):
    runs = [make_run(status="failed", started_ago=timedelta(days=31 + n)) for n in range(3)]
    newest = runs[0]  # pruned last: oldest first
    with connection.cursor() as cursor:
        # A refusal on the third row, as a role without DELETE on some rows would meet.
        cursor.execute(
            "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF OLD.id = '{newest.pk}' THEN RAISE 'refused'; END IF; "
            "RETURN OLD; END $$;"
            "CREATE TRIGGER refuse_delete BEFORE DELETE ON tender_runs "
            "FOR EACH ROW EXECUTE FUNCTION refuse_delete()"
        )
    try:
        with pytest.raises(CommandError) as failed:
            run_command("prune_runs", "--batch-size", "1")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER refuse_delete ON tender_runs; DROP FUNCTION refuse_delete()"
            )
    assert failed.value.returncode == 3
    assert "Nothing was changed" not in str(failed.value)
    assert "Batches committed before that, if any, stay done" in str(failed.value)
    assert list(TenderRun.objects.values_list("pk", flat=True)) == [newest.pk]


@pytest.mark.parametrize(
    "flags", [["--auto"], ["--dry-r"], ["--time", "5", "--dry-run"]], ids=["auto", "dry", "time"]
)
def test_an_abbreviated_flag_is_refused_not_guessed(flags, stuck_and_live):
    """argparse took "--auto" for "--auto-fix", which fails runs without a prompt."""
    with pytest.raises(CommandError, match="unrecognized arguments"):
        run_command("cleanup_stuck_runs", *flags)
    assert statuses(*stuck_and_live) == ["running", "running"]


def test_demo_admin_resets_no_password_unless_debug_is_on(admin_user, settings):
    """``admin`` may be the live console's superuser: outside the demo, its password stays."""
    password = admin_user.password
    with pytest.raises(CommandError, match="only with DJANGO_DEBUG=true") as refused:
        run_command("demo_admin")
    assert refused.value.returncode == 2
    admin_user.refresh_from_db()
    assert admin_user.password == password
    settings.DEBUG = True
    assert run_command("demo_admin").startswith("Admin login: admin / ")
    admin_user.refresh_from_db()
    assert admin_user.password != password


def test_send_test_alert_without_a_channel_names_every_channel_setting(db):
    with pytest.raises(CommandError) as refused:
        run_command("send_test_alert")
    assert refused.value.returncode == 2
    for name in ("ALERT_EMAILS", "ALERT_WEBHOOK_URL", "WECOM_WEBHOOK_URL", "DINGTALK_WEBHOOK_URL"):
        assert f"TENDEROPS_{name}" in str(refused.value)
    assert "TENDEROPS_FEISHU_WEBHOOK_URL" in str(refused.value)
