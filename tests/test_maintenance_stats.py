"""The stats routine: what it counts, and that its planner settings stay inside it."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection

from runs.maintenance import collect_stats
from runs.maintenance.db import local_settings

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def current(*names: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(['current_setting(%s)'] * len(names))}", names)
        return list(cursor.fetchone())


def test_stats_count_the_table_and_the_recent_windows(make_run):
    make_run(status="success", started_ago=2 * HOUR)
    make_run(status="success", started_ago=3 * HOUR, kind=None, run_type="risks")
    make_run(status="failed", started_ago=2 * DAY, error="LLM 调用超时")
    make_run(status="failed", started_ago=40 * DAY, error="too old for any window")
    make_run(status="running", started_ago=5 * HOUR)

    stats = collect_stats()

    assert stats.count("success", "extract_project_info") == 1
    assert stats.count("success", "risks") == 1
    assert stats.count("failed", "extract_project_info") == 2
    assert stats.count("running", "extract_project_info") == 1
    windows = {w.window: (w.finished, w.failed) for w in stats.failures}
    assert windows == {"24h": (2, 0), "7d": (3, 1), "30d": (3, 1)}
    assert [e for w in stats.failures if w.window == "7d" for e in w.top_errors] == [
        ("LLM 调用超时", 1)
    ]
    assert sum(day.get("success", 0) for _, day in stats.daily) == 2
    assert len(stats.daily) == 30


def test_a_run_said_to_finish_before_it_started_has_no_duration(make_run):
    from django.db.models import F

    from runs.models import TenderRun

    forwards = make_run(status="success", started_ago=2 * HOUR, kind="review")
    backwards = make_run(status="success", started_ago=3 * HOUR, kind="review")
    TenderRun.objects.filter(pk=forwards.pk).update(finished_at=F("started_at") + HOUR)
    TenderRun.objects.filter(pk=backwards.pk).update(finished_at=F("started_at") - 4 * HOUR)
    make_run(status="success", started_ago=HOUR, kind="review")  # no finish written
    make_run(status="success", started_ago=HOUR, kind="docx")  # nothing of its kind to time
    durations = {d.kind: d for d in collect_stats().durations}
    # Counted as the list behind the count counts them; timed only where a finish is true.
    review = durations["review"]
    assert (review.runs, review.p50_minutes, review.max_minutes) == (3, 60.0, 60.0)
    assert "docx" not in durations


@pytest.mark.postgres  # PostgreSQL's planner settings (current_setting)
def test_stats_leave_the_sessions_planner_settings_as_they_were(make_run):
    make_run(status="success")
    before = current("jit", "enable_seqscan")

    collect_stats()

    assert current("jit", "enable_seqscan") == before


@pytest.mark.postgres  # PostgreSQL's planner settings (current_setting)
def test_settings_are_undone_when_a_statement_inside_fails(db):
    before = current("enable_seqscan")
    with pytest.raises(DatabaseError), local_settings(enable_seqscan="off"):
        assert current("enable_seqscan") == ["off"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    assert current("enable_seqscan") == before == ["on"]
