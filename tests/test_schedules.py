"""django-q2 schedules, ticks and heartbeats, including real qcluster processes."""

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from runs.maintenance import (
    MONITOR,
    RETENTION,
    AlertEvent,
    db_now,
    monitor_tick,
    raise_alert,
    retention_tick,
)
from runs.models import Alert, AlertGate, FailedRunRecord, Heartbeat, MaintenanceAction, TenderRun
from runs.schedules import (
    DELIVERY_SCHEDULE,
    MONITOR_SCHEDULE,
    OWNED_SCHEDULES,
    RETENTION_SCHEDULE,
    SPIKES_SCHEDULE,
    next_daily_run,
    sync_schedules,
)
from tests.conftest import statuses
from tests.processes import qclusters, wait_until

MIN = timedelta(minutes=1)


def schedule(name: str) -> Schedule:
    (only,) = Schedule.objects.filter(name=name)
    return only


@pytest.mark.django_db(transaction=True)
def test_migrate_keeps_exactly_one_schedule_of_each_kind_in_line_with_settings(settings):
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    monitor = schedule(MONITOR_SCHEDULE)
    assert (monitor.schedule_type, monitor.minutes, monitor.repeats) == (Schedule.MINUTES, 1, -1)
    assert monitor.func == "runs.tasks.fail_stuck_runs_task"
    assert schedule(RETENTION_SCHEDULE).schedule_type == Schedule.DAILY
    assert (schedule(DELIVERY_SCHEDULE).func, schedule(DELIVERY_SCHEDULE).minutes) == (
        "runs.tasks.deliver_due_alerts_task",
        1,
    )
    assert (schedule(SPIKES_SCHEDULE).func, schedule(SPIKES_SCHEDULE).minutes) == (
        "runs.tasks.check_failure_spikes_task",
        10,
    )
    first_next_run = monitor.next_run

    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = 5
    Schedule.objects.create(name=MONITOR_SCHEDULE, func="x.y", schedule_type=Schedule.ONCE)
    call_command("migrate", verbosity=0)
    monitor = schedule(MONITOR_SCHEDULE)
    assert monitor.minutes == 5
    assert monitor.next_run == first_next_run
    assert Schedule.objects.count() == len(OWNED_SCHEDULES)  # the duplicate made by hand is gone


def test_a_lowered_interval_brings_the_next_tick_within_it(settings, db):
    """From a day to a minute: the monitor's next run stayed a day away, while health and
    the watchdog called it stale after three minutes (found by the attacker)."""
    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = 1440
    sync_schedules()
    Schedule.objects.filter(name=MONITOR_SCHEDULE).update(next_run=timezone.now() + 1439 * MIN)
    sync_schedules()  # the same interval: kept
    assert schedule(MONITOR_SCHEDULE).next_run > timezone.now() + 1438 * MIN
    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = 1
    sync_schedules()
    assert schedule(MONITOR_SCHEDULE).next_run <= timezone.now() + MIN


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_retention_runs_daily_at_its_time_in_its_zone_never_minutes_after_migrate(
    settings, db, zone
):
    settings.TIME_ZONE = zone
    settings.TENDEROPS_RETENTION_TIME = time(3, 0)
    sync_schedules()
    local = schedule(RETENTION_SCHEDULE).next_run.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (3, 0)
    now = timezone.now()
    assert now < local <= now + timedelta(days=1)

    first = schedule(RETENTION_SCHEDULE).next_run
    sync_schedules()
    assert schedule(RETENTION_SCHEDULE).next_run == first  # a re-sync never moves it

    settings.TENDEROPS_RETENTION_TIME = time(4, 30)
    sync_schedules()
    moved = schedule(RETENTION_SCHEDULE).next_run.astimezone(ZoneInfo(zone))
    assert (moved.hour, moved.minute) == (4, 30)


def test_retention_time_off_removes_the_schedule(settings, db):
    sync_schedules()
    settings.TENDEROPS_RETENTION_TIME = None
    sync_schedules()
    assert not Schedule.objects.filter(name=RETENTION_SCHEDULE).exists()
    assert Schedule.objects.filter(name=MONITOR_SCHEDULE).count() == 1


def test_schedules_command_shows_and_syncs(settings, db):
    from io import StringIO

    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = 3
    settings.TIME_ZONE = "Asia/Shanghai"  # TENDEROPS_TIME_ZONE: every time is shown in it
    out = StringIO()
    call_command("tenderops_schedules", "--sync", stdout=out)
    assert "every 3 min" in out.getvalue() and "daily" in out.getvalue()
    (retention,) = [line for line in out.getvalue().splitlines() if RETENTION_SCHEDULE in line]
    # At the configured time, in the zone, named unambiguously ("CST" is America's too).
    assert "03:00:00 (Asia/Shanghai)" in retention
    assert schedule(MONITOR_SCHEDULE).minutes == 3
    assert "not as the settings say" not in out.getvalue()
    # Retention run early from django-q2's admin: it keeps that time of day ever after.
    early = next_daily_run(timezone.now(), time(1, 14, 20))  # the configured time is 03:00
    Schedule.objects.filter(name=RETENTION_SCHEDULE).update(next_run=early)
    out = StringIO()
    call_command("tenderops_schedules", stdout=out)
    (line,) = [line for line in out.getvalue().splitlines() if RETENTION_SCHEDULE in line]
    assert line.endswith("(not as the settings say: --sync puts it back)")


def test_monitor_tick_fails_stuck_runs_as_schedule_and_beats(make_run):
    stuck, live = make_run(started_ago=30 * MIN), make_run(started_ago=MIN)
    assert monitor_tick().fixed_count == 1
    assert statuses(stuck, live) == ["failed", "running"]
    assert MaintenanceAction.objects.get().actor == "schedule"
    beat = Heartbeat.objects.get(name=MONITOR)
    assert beat.last_result == {"fixed_count": 1}
    assert db_now() - beat.last_finished_at < MIN


def test_quiet_tick_writes_a_heartbeat_but_no_audit(make_run):
    make_run(started_ago=MIN)
    monitor_tick()
    first = Heartbeat.objects.get(name=MONITOR).last_finished_at
    monitor_tick()
    assert not MaintenanceAction.objects.exists()
    assert Heartbeat.objects.get(name=MONITOR).last_finished_at > first


@pytest.mark.postgres
def test_a_quiet_tick_is_one_statement_that_observes_and_beats(make_run):
    """Nothing stuck: the observation's own statement finds so and stamps the heartbeat; no
    failing statement runs."""
    live = make_run(started_ago=MIN)
    monitor_tick()
    TenderRun.objects.filter(pk=live.pk).update(progress=0.5)
    with CaptureQueriesContext(connection) as queries:
        assert monitor_tick().fixed_count == 0
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    beats = [sql for sql in statements if "tenderops_heartbeat" in sql]
    assert len(beats) == 1 and "tenderops_run_observation" in beats[0]
    # The observer's lock and settings sent with the observation, in one round trip: nothing
    # waits, no stale alert is open.
    assert len(statements) == 1, statements
    assert not any("UPDATE tender_runs" in sql for sql in statements)
    beat = Heartbeat.objects.get(name=MONITOR)
    assert beat.last_result == {"fixed_count": 0}
    assert db_now() - beat.last_finished_at < MIN
    assert statuses(live) == ["running"]


@pytest.mark.postgres
def test_a_tick_still_tells_of_waiting_runs_and_resolves_a_stale_monitor(make_run, settings):
    """What the observation's statement answered for the tick (a run waits, a stale alert is
    open) is acted on: the waiting digest is recorded and the stale monitor resolved."""
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    make_run(status="pending", started_ago=45 * MIN)
    raise_alert(AlertEvent.MONITOR_STALE, facts={"source": "health"}, announce=False)
    assert monitor_tick().fixed_count == 0
    events = set(Alert.objects.values_list("event", flat=True))
    assert events == {"monitor_stale", "waiting", "monitor_recovered"}
    assert not AlertGate.objects.filter(event="monitor_stale", open=True).exists()


def test_retention_tick_prunes_as_schedule(make_run):
    old = make_run(status="failed", started_ago=timedelta(days=45))
    retention_tick()
    assert statuses(old) == ["<deleted>"]
    assert MaintenanceAction.objects.get().actor == "schedule"
    result = Heartbeat.objects.get(name=RETENTION).last_result
    assert result["deleted"] == {"failed": 1, "success": 0}
    # tenderops' own history too: nothing of it is a year old yet.
    assert {name: result["history"][name] for name in ("actions", "records", "alerts")} == {
        "actions": 0,
        "records": 0,
        "alerts": 0,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_qcluster_fails_stuck_runs_on_schedule(make_run, tmp_path):
    stuck = [make_run(started_ago=(20 + n) * MIN) for n in range(5)]
    live = make_run(started_ago=MIN)
    with qclusters(1, tmp_path):
        wait_until(
            lambda: TenderRun.objects.filter(status="failed").count() == len(stuck),
            timeout=150,
            what="the scheduled monitor to fail the stuck runs",
        )
        wait_until(
            lambda: Heartbeat.objects.filter(name=MONITOR).exists(),
            timeout=30,
            what="the monitor's heartbeat",
        )
    assert statuses(*stuck, live) == ["failed"] * len(stuck) + ["running"]
    assert set(MaintenanceAction.objects.values_list("actor", flat=True)) == {"schedule"}
    assert FailedRunRecord.objects.count() == len(stuck)
    assert db_now() - Heartbeat.objects.get(name=MONITOR).last_finished_at < 3 * MIN


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_qclusters_fail_each_stuck_run_exactly_once(make_run, tmp_path):
    stuck = [make_run(started_ago=(20 + n) * MIN) for n in range(40)]
    with qclusters(2, tmp_path):
        wait_until(
            lambda: TenderRun.objects.filter(status="failed").count() == len(stuck),
            timeout=150,
            what="the scheduled monitors to fail the stuck runs",
        )
    records = list(FailedRunRecord.objects.values_list("run_id", flat=True))
    assert sorted(records) == sorted(run.id for run in stuck)


def every_column(run_ids: list[str]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(r)::text FROM tender_runs r WHERE id = ANY(%s) ORDER BY id",
            [run_ids],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_report_mode_changes_no_row_over_a_qcluster_tick(make_run, tmp_path):
    stuck = [make_run(started_ago=(20 + n) * MIN).pk for n in range(5)]
    before = every_column(stuck)
    with qclusters(1, tmp_path, {"TENDEROPS_MONITOR_MODE": "report"}):
        wait_until(
            lambda: Heartbeat.objects.filter(name=MONITOR).exists(),
            timeout=150,
            what="a monitor tick in report mode",
        )
    assert every_column(stuck) == before
    action = MaintenanceAction.objects.get()
    assert (action.kind, action.actor, action.affected_count) == ("would_fail", "schedule", 5)
    assert sorted(action.failed_runs.values_list("run_id", flat=True)) == sorted(stuck)
    assert Heartbeat.objects.get(name=MONITOR).last_result == {"fixed_count": 0, "would_fail": 5}
