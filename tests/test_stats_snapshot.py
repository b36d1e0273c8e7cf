"""The stats page reads a snapshot refreshed off the request path (issue 16): exact as of a
moment it states, never recomputed per viewer, stale said so, deleted projects gone after the
next refresh."""

import re
import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.db.models.functions import Now

from runs.maintenance import collect_stats
from runs.maintenance.stats_snapshot import (
    REFRESH_LOCK,
    StatsReading,
    read_stats_snapshot,
    refresh_stats_snapshot,
    refresh_stats_snapshot_if_due,
    stats_from_json,
    stats_to_json,
)
from runs.models import StatsSnapshot, TenderProject, TenderRun
from tests.conftest import new_id
from tests.processes import current_database_url
from tests.test_admin import STATS, staff_client

HOUR = timedelta(hours=1)


def age_snapshot(by: timedelta) -> None:
    StatsSnapshot.objects.update(computed_at=Now() - by)


def card(html: str, card_id: str) -> str:
    return re.search(rf'id="{card_id}"><a [^>]*data-count="(\d+)"', html).group(1)


def table_counts(html: str) -> str:
    return re.search(r'<table id="status-kind-table".*?</table>', html, re.S).group(0)


def test_the_snapshot_survives_json_unchanged(make_run):
    make_run(status="success", started_ago=2 * HOUR)
    make_run(status="failed", started_ago=3 * HOUR, error="LLM 调用超时")
    make_run(status="running", started_ago=HOUR)
    stats = collect_stats()
    assert stats_from_json(stats_to_json(stats)) == stats


def test_viewers_read_the_snapshot_until_it_is_refreshed(make_run):
    viewer = staff_client("view_tenderrun")
    make_run(status="success", started_ago=2 * HOUR)
    first = viewer.get(STATS).content.decode()  # the very first view computes it once
    assert re.search(r"Tables as of \d{2}:\d{2}:\d{2}; the cards below are live", first)
    make_run(status="failed", started_ago=HOUR, error="boom")
    assert table_counts(viewer.get(STATS).content.decode()) == table_counts(first)
    refresh_stats_snapshot()
    assert table_counts(viewer.get(STATS).content.decode()) != table_counts(first)
    stats, as_of, stale = read_stats_snapshot()
    assert stats.count("failed", "extract_project_info") == 1 and not stale


def test_staff_refresh_now_recomputes(make_run):
    viewer = staff_client("view_tenderrun", csrf=False)
    make_run(status="success", started_ago=2 * HOUR)
    viewer.get(STATS)
    make_run(status="failed", started_ago=HOUR)
    age_snapshot(timedelta(minutes=1))
    response = viewer.post(STATS, {"refresh": "1"})
    assert response.status_code == 302
    assert read_stats_snapshot().stats.count("failed", "extract_project_info") == 1


def test_refresh_now_waits_six_times_as_long_as_the_last_refresh_took(make_run):
    """A refresh reads the whole table (10 s at 10 M runs): staff's clicks every 10 s kept a
    core busy."""
    viewer = staff_client("view_tenderrun", csrf=False)
    make_run(status="success", started_ago=2 * HOUR)
    viewer.get(STATS)
    StatsSnapshot.objects.update(seconds=20)
    make_run(status="failed", started_ago=HOUR)
    age_snapshot(timedelta(seconds=100))
    viewer.post(STATS, {"refresh": "1"})
    assert read_stats_snapshot().stats.count("failed", "extract_project_info") == 0
    age_snapshot(timedelta(seconds=125))
    viewer.post(STATS, {"refresh": "1"})
    assert read_stats_snapshot().stats.count("failed", "extract_project_info") == 1


def test_an_old_snapshot_says_it_is_stale(make_run, settings):
    viewer = staff_client("view_tenderrun")
    make_run(status="success")
    refresh_stats_snapshot()
    age_snapshot(timedelta(seconds=settings.TENDEROPS_STATS_MAX_AGE_SECONDS + 60))
    assert read_stats_snapshot().stale
    html = viewer.get(STATS).content.decode()
    assert "could not be refreshed since" in html and 'class="errornote"' in html


def test_the_schedule_refreshes_only_when_due(make_run, settings):
    make_run(status="success")
    assert refresh_stats_snapshot_if_due() is not None  # none yet
    assert refresh_stats_snapshot_if_due() is None  # fresh: the cost is not paid again
    age_snapshot(timedelta(seconds=settings.TENDEROPS_STATS_MAX_AGE_SECONDS - 30))
    assert refresh_stats_snapshot_if_due() is not None  # would outlive its age before next


def test_deleted_projects_leave_no_counts_after_the_next_refresh(make_run):
    make_run(status="success")
    other = TenderProject.objects.create(id=new_id("tp_"), kb_id="kb", name="gone")
    TenderRun.objects.create(
        id=new_id("tr_"),
        project=other,
        run_type="risks",
        kind="extract_project_info",
        status="failed",
    )
    refresh_stats_snapshot()
    assert read_stats_snapshot().stats.count("failed", "extract_project_info") == 1
    other.delete()  # the backend deletes a project; its runs go with it
    refresh_stats_snapshot()
    assert read_stats_snapshot().stats.count("failed", "extract_project_info") == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_refresh_keeps_the_figures_and_records_why(make_run):
    """Another session holds the table (as a migration might): the refresh times out."""
    make_run(status="success")
    refresh_stats_snapshot()
    kept = StatsSnapshot.objects.get()
    with psycopg.connect(current_database_url()) as other, connection.cursor() as cursor:
        other.execute("LOCK TABLE tender_runs IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SET lock_timeout = '100ms'")
        try:
            with pytest.raises(DatabaseError):
                refresh_stats_snapshot()
        finally:
            cursor.execute("RESET lock_timeout")
    after = StatsSnapshot.objects.get()
    assert after.computed_at == kept.computed_at and after.data == kept.data
    assert "lock" in after.last_error.lower() and after.last_attempt_at > kept.computed_at


def test_the_monitor_card_reads_the_heartbeat_now_not_the_snapshot(db):
    from runs.maintenance.heartbeat import MONITOR, beat
    from runs.models import Heartbeat

    beat(MONITOR, {"fixed_count": 0})
    refresh_stats_snapshot()  # the snapshot saw a healthy monitor, just run
    # The monitor then stopped: its last run is an hour old, the snapshot still fresh.
    Heartbeat.objects.filter(name=MONITOR).update(last_finished_at=Now() - timedelta(hours=1))
    html = staff_client("viewer", "view_tenderrun").get(STATS).content.decode()
    card = re.search(r'id="monitor-health">(.*?)</div>', html, re.S).group(1)
    assert "stale" in card and "OK" not in card
    assert re.search(r"\(1\sh 00\smin ago\)", card)  # not "0 min 00 s ago"


# Each refresh in its own transaction, as in production: a snapshot is as of its start.
@pytest.mark.django_db(transaction=True)
def test_after_a_tick_the_cards_are_live_and_the_tables_say_what_they_miss(make_run):
    from runs.maintenance import monitor_tick

    for minutes in (30, 40):
        make_run(started_ago=timedelta(minutes=minutes))  # stuck
    make_run(started_ago=timedelta(minutes=1))  # running, young
    refresh_stats_snapshot()  # as of now: 3 running, 2 stuck
    viewer = staff_client("viewer", "view_tenderrun")
    before = viewer.get(STATS).content.decode()
    assert 'id="failed-since"' not in before
    assert card(before, "stuck-now") == "2"
    assert monitor_tick().fixed_count == 2
    html = viewer.get(STATS).content.decode()
    assert card(html, "stuck-now") == "0" and card(html, "running-now") == "1"
    assert "Since then tenderops has failed 2 runs" in html
    assert table_counts(html) == table_counts(before)  # counted at the next refresh
    refresh_stats_snapshot()
    assert 'id="failed-since"' not in viewer.get(STATS).content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_first_viewer_meeting_another_refresher_waits_for_it(make_run):
    """Right after installing, the cluster's first refresh and a viewer's collide: the
    viewer got a 500 (no snapshot yet, and the lock taken)."""
    make_run(status="success")
    StatsSnapshot.objects.all().delete()
    read: list[object] = []
    with psycopg.connect(current_database_url()) as refresher:
        refresher.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])
        viewer = threading.Thread(target=read_in_a_thread, args=(read,))
        viewer.start()
        try:
            wait_for_an_advisory_lock_waiter(refresher)
        finally:
            refresher.rollback()  # the other refresher gives up: the viewer computes
            viewer.join(timeout=60)
    (reading,) = read
    assert isinstance(reading, StatsReading), reading
    assert reading.stats.count("success", "extract_project_info") == 1


def read_in_a_thread(read: list[object]) -> None:
    try:
        read.append(read_stats_snapshot())
    except Exception as error:  # reported by the test, not lost in the thread
        read.append(error)
    finally:
        connection.close()


def wait_for_an_advisory_lock_waiter(observer: psycopg.Connection) -> None:
    """Bounded polling of pg_locks: the viewer is blocked on the refresher's lock."""
    for _ in range(600):
        waiting = observer.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]
        if waiting:
            return
        observer.execute("SELECT pg_sleep(0.05)")
    raise AssertionError("the viewer never waited for the lock")
