"""The tender backend's table in a shape tenderops would misjudge (times without a time zone)
or could not write (bounded text), and half of its tables: refused, nothing changed."""

import io
from datetime import timedelta

import pytest
from django.db import NotSupportedError, connection, transaction

from runs.maintenance import mark_runs_failed
from runs.models import Actor, TenderRun
from tests.conftest import LIVE_SCHEMA, statuses
from tests.databases import manage, run_sql, scratch_database
from tests.test_schema import refused_adoption

pytestmark = pytest.mark.postgres

WITHOUT_TIME_ZONE = (
    "ALTER TABLE tender_runs ALTER started_at TYPE timestamp "
    "USING started_at AT TIME ZONE 'Asia/Shanghai'"
)
PROJECT = "INSERT INTO tender_projects (id, kb_id, name) VALUES ('tp_1', 'kb', 'p')"


def test_adopting_a_start_without_a_time_zone_is_refused_and_changes_nothing(db):
    refused = refused_adoption(WITHOUT_TIME_ZONE)
    assert "tender_runs.started_at is timestamp without time zone" in refused.stderr
    assert refused.unchanged
    assert not [table for table in refused.tables if table.startswith("tenderops")]


def test_adopting_a_bounded_message_column_is_refused(db):
    refused = refused_adoption("ALTER TABLE tender_runs ALTER message TYPE varchar(200)")
    assert "tender_runs.message is character varying(200): tenderops writes" in refused.stderr


def test_half_of_the_backends_tables_is_neither_adopted_nor_completed(db):
    """The live schema run there altered the table that was there and indexed it without
    CONCURRENTLY, blocking the backend's writes (found by the deployment attacker)."""
    refused = refused_adoption("ALTER TABLE tender_projects RENAME TO projects")
    assert "tender_runs exists but tender_projects does not" in refused.stderr
    assert refused.unchanged
    assert "tender_projects" not in refused.tables


def test_a_table_that_drifted_after_adoption_has_nothing_failed_or_listed(db):
    """In a database time zone west of UTC, a run started a second before was failed as
    silent for hours at once (east of it, one silent for hours looked not yet started)."""
    with scratch_database() as live:
        run_sql(live, LIVE_SCHEMA.read_text())
        assert manage(live, "migrate", "--noinput").returncode == 0
        run_sql(live, PROJECT)
        run_sql(
            live,
            "INSERT INTO tender_runs (id, project_id, run_type, status, started_at) "
            "VALUES ('tr_new', 'tp_1', 'review', 'running', now() - interval '1 second')",
        )
        run_sql(live, WITHOUT_TIME_ZONE.replace("Asia/Shanghai", "America/New_York"))
        for how in ("--auto-fix", "--dry-run"):
            result = manage(live, "cleanup_stuck_runs", how)
            assert result.returncode == 3, result.stderr
            assert "started_at is timestamp without time zone" in result.stderr
            assert "types of runs/tender_live.sql" in result.stderr  # not "run migrate"
            assert "run `python manage.py migrate`" not in result.stderr
        assert run_sql(live, "SELECT status FROM tender_runs") == [("running",)]
        assert not run_sql(live, "SELECT 1 FROM tenderops_maintenance_action")
        checked = manage(live, "check", "--database", "default")
        assert checked.returncode != 0 and "tenderops.E001" in checked.stderr


def test_types_that_hold_what_tenderops_needs_are_adopted(db):
    """Refused by name at first: a precision, a domain over text, a long enough varchar (the
    reviewer)."""
    with scratch_database() as live:
        run_sql(live, LIVE_SCHEMA.read_text())
        run_sql(
            live,
            "CREATE DOMAIN line_text AS text;"
            "ALTER TABLE tender_runs ALTER started_at TYPE timestamptz(3), "
            "ALTER finished_at TYPE timestamptz(6), ALTER message TYPE line_text, "
            "ALTER error TYPE varchar(4000), ALTER status TYPE varchar(20)",
        )
        result = manage(live, "migrate", "--noinput")
        assert result.returncode == 0, result.stderr


def test_the_adoption_itself_refuses_a_start_without_a_time_zone(db):
    """Without the checks that stop migrate first (--skip-checks), migration 0001 does."""
    with scratch_database() as live:
        run_sql(live, LIVE_SCHEMA.read_text())
        run_sql(live, WITHOUT_TIME_ZONE)
        result = manage(live, "migrate", "--noinput", "--skip-checks")
        assert result.returncode != 0
        assert "started_at is timestamp without time zone" in result.stderr
        assert "Nothing was changed" in result.stderr


def test_an_operators_failing_on_a_table_altered_meanwhile_changes_nothing(make_run):
    """Checked each time, not once per process: a cluster that started on a healthy table
    failed a run started seconds before once the table had changed (the reviewer)."""
    run = make_run(status="running")
    mark_runs_failed(TenderRun.objects.filter(pk="tr_none"), actor=Actor.USER)  # healthy, seen
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("ALTER TABLE tender_runs ALTER started_at TYPE timestamp")
    refused = pytest.raises(NotSupportedError, match="started_at is timestamp without time zone")
    with refused, transaction.atomic():
        mark_runs_failed(TenderRun.objects.filter(pk=run.pk), actor=Actor.USER)
    assert statuses(run) == ["running"]


def test_a_table_drifted_so_runs_look_younger_turns_health_and_the_watchdog_red(
    client, admin_client, bearer, make_run
):
    """East of UTC a run silent for hours looks not yet started: the quiet tick finds nothing
    stuck and stamps its heartbeat, so "the monitor runs" alone said all was well."""
    from django.core.management import CommandError, call_command

    from runs.maintenance import MONITOR, monitor_tick
    from runs.maintenance.stats_snapshot import refresh_stats_snapshot
    from runs.models import Heartbeat
    from tests.api_client import HEALTH

    make_run(started_ago=timedelta(minutes=2))
    monitor_tick()
    assert client.get(HEALTH, **bearer).json()["status"] == "ok"
    refresh_stats_snapshot()  # the stats page's snapshot, taken before the drift
    with connection.cursor() as cursor:
        cursor.execute(WITHOUT_TIME_ZONE)
    monitor_tick()
    health = client.get(HEALTH, **bearer)
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "table_unsupported"
    assert body["table_problems"] == [
        "tender_runs.started_at is timestamp without time zone, not timestamp with time zone: "
        "runs' ages would be misjudged"
    ]
    with pytest.raises(CommandError, match="started_at is timestamp without time zone") as error:
        call_command("tenderops_watchdog", stdout=io.StringIO())
    assert error.value.returncode == 1
    page = admin_client.get("/admin/runs/tenderrun/stats/")
    assert page.status_code == 200
    assert 'id="table-problems"' in page.content.decode()
    # A stale monitor is said first, the table's problems beside it.
    Heartbeat.objects.filter(name=MONITOR).delete()
    body = client.get(HEALTH, **bearer).json()
    assert body["status"] == "stale" and len(body["table_problems"]) == 1
    with pytest.raises(CommandError, match="stale.*started_at is timestamp without") as error:
        call_command("tenderops_watchdog", stdout=io.StringIO())


def test_a_table_that_allows_missing_values_is_named_and_its_runs_shown(
    client, admin_client, bearer, make_run, settings
):
    """A table altered to allow runs without a start, a status or a type: the runs list,
    their pages, /metrics and the stats answered 500 and the shape check saw nothing."""
    from runs.maintenance.stats_snapshot import refresh_stats_snapshot
    from tests.api_client import HEALTH

    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(
            "ALTER TABLE tender_runs ALTER started_at DROP NOT NULL, "
            "ALTER run_type DROP NOT NULL, ALTER status DROP NOT NULL"
        )
    runs = [make_run(kind=None) for _ in range(3)]
    for run, missing in zip(runs, ("started_at", "run_type", "status"), strict=True):
        TenderRun.objects.filter(pk=run.pk).update(**{missing: None})
    problems = client.get(HEALTH, **bearer).json()["table_problems"]
    assert [problem.split(" ")[0] for problem in problems] == [
        "tender_runs.run_type",
        "tender_runs.status",
        "tender_runs.started_at",
    ]
    assert all("allows NULL" in problem for problem in problems)
    settings.TENDEROPS_METRICS_TOKEN = "metrics-token-null-0123"
    admin_client.raise_request_exception = False
    refresh_stats_snapshot()
    for address in (
        "/admin/runs/tenderrun/",
        *(f"/admin/runs/tenderrun/{run.pk}/change/" for run in runs),
        "/admin/runs/tenderrun/stats/",
        "/admin/runs/tenderrun/export/",
    ):
        assert admin_client.get(address).status_code == 200, address
    scrape = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-null-0123")
    assert scrape.status_code == 200
    assert "tenderops_table_problems 3.0" in scrape.content.decode()
