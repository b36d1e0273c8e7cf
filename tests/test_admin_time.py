"""TENDEROPS_TIME_ZONE in the admin: every time shown in it, the zone named on every page, runs
per day counted as days in it, the started-date filter read in it, the CSV written in it."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from runs.maintenance import collect_stats, db_now, fail_stuck_runs
from runs.models import Actor, MaintenanceAction
from tests.console import CLEANUP, LIST, STATS, list_count, staff_client, started_at

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture
def operator(db):
    return staff_client(
        "operator", "view_tenderrun", "mark_failed_tenderrun", "view_maintenanceaction"
    )


def test_every_page_names_the_zone_and_shows_its_times(shanghai, operator, make_run):
    # 17:30:05 UTC is 01:30:05 the next day in Shanghai.
    run = started_at(make_run(message="提取中..."), datetime(2026, 1, 1, 17, 30, 5, tzinfo=UTC))
    fail_stuck_runs(actor=Actor.CLI)
    action = MaintenanceAction.objects.get()
    pages = [
        LIST,
        f"{LIST}{run.pk}/change/",
        STATS,
        CLEANUP,
        "/admin/runs/maintenanceaction/",
        f"/admin/runs/maintenanceaction/{action.pk}/change/",
        f"/admin/runs/tenderproject/{run.project_id}/change/",
        "/admin/",
    ]
    for url in pages:
        html = operator.get(url).content.decode()
        assert "Times in Asia/Shanghai (UTC+08:00)" in html, url
    project_page = f"/admin/runs/tenderproject/{run.project_id}/change/"
    for url in (LIST, f"{LIST}{run.pk}/change/", project_page):
        html = operator.get(url).content.decode()
        assert "2026-01-02 01:30:05" in html, url
        assert "2026-01-01 17:30:05" not in html, url
    failed_at = timezone.localtime(action.started_at, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    audit = operator.get(f"/admin/runs/maintenanceaction/{action.pk}/change/").content.decode()
    assert failed_at in audit  # with its seconds, in the zone
    assert failed_at in operator.get("/admin/runs/maintenanceaction/").content.decode()


def test_utc_is_named_plainly(operator, make_run):
    make_run()
    assert "Times in UTC<" in operator.get(LIST).content.decode()


def local_day_start(day) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)


def test_runs_per_day_are_days_in_the_zone(shanghai, operator, make_run):
    today = timezone.localtime(db_now(), SHANGHAI).date()
    day = today - timedelta(days=3)
    # 00:30 in Shanghai is 16:30 UTC of the day before: a UTC day would count it a day early.
    early = started_at(make_run(status="success"), local_day_start(day) + timedelta(minutes=30))
    late = started_at(make_run(status="success"), local_day_start(day) - timedelta(minutes=30))
    daily = dict(collect_stats().daily)
    assert daily[day] == {"success": 1}
    assert daily[day - timedelta(days=1)] == {"success": 1}
    assert list(daily)[-1] == today

    # The list's date range is read in the same zone, both days included.
    html = operator.get(f"{LIST}?started_from={day}&started_to={day}").content.decode()
    assert early.pk in html and late.pk not in html
    assert list_count(html) == 1
    before = operator.get(f"{LIST}?started_to={day - timedelta(days=1)}").content.decode()
    assert late.pk in before and early.pk not in before


def test_today_filter_starts_at_midnight_in_the_zone(shanghai, operator, make_run):
    today = timezone.localtime(db_now(), SHANGHAI).date()
    yesterday_late = started_at(make_run(), local_day_start(today) - timedelta(seconds=1))
    today_early = started_at(make_run(), local_day_start(today) + timedelta(seconds=1))
    html = operator.get(f"{LIST}?started=today").content.decode()
    assert today_early.pk in html and yesterday_late.pk not in html


def test_today_and_stuck_since_read_the_databases_clock_not_the_servers(
    operator, make_run, monkeypatch, settings
):
    """An application server whose clock runs a day ahead: "today" was its tomorrow (no run
    listed) and a run not yet stuck was called stuck since a moment still to come."""
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 60
    run = make_run(started_ago=timedelta(0))  # today by the database's clock, at any hour
    ahead = db_now() + timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: ahead)
    assert run.pk in operator.get(f"{LIST}?started=today").content.decode()
    assert "stuck since" not in operator.get(f"{LIST}{run.pk}/change/").content.decode()


def test_running_and_silent_for_count_on_the_databases_clock(operator, make_run, monkeypatch):
    """The list's durations, and the clock its live counter counts on, are the database's: a
    server a day ahead called a run started 5 minutes ago "1 d 0 h" running and silent."""
    make_run(started_ago=timedelta(minutes=5))
    ahead = db_now() + timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: ahead)
    html = operator.get(LIST).content.decode()
    shown = re.findall(r'<span class="run-live" data-started="[^"]*"[^>]*>([^<]*)</span>', html)
    assert len(shown) == 2 and all(re.match(r"^[56]\xa0min \d\d\xa0s$", t) for t in shown), shown
    # Also on a page that opens empty: a live refresh may bring it rows to count.
    for page in (html, operator.get(f"{LIST}?status=success").content.decode()):
        listed = re.search(r'<script id="run-listed-at" type="application/json">"([^"]+)"', page)
        assert abs(datetime.fromisoformat(listed.group(1)) - db_now()) < timedelta(minutes=1)


def test_the_date_range_form_keeps_the_other_filters_search_and_order(operator, make_run):
    make_run()
    html = operator.get(f"{LIST}?status=running&q=提取&o=-7&p=2&started_from=2026-01-01").content
    form = html.decode().split('class="started-range"')[1].split("</form>")[0]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert hidden == {"status": "running", "q": "提取", "o": "-7"}
    assert 'name="started_from" value="2026-01-01"' in form


def test_a_range_that_ends_before_it_starts_says_so(operator, make_run):
    run = make_run()
    html = operator.get(f"{LIST}?started_from=2026-03-02&started_to=2026-03-01").content.decode()
    assert "The range from 2026-03-02 to 2026-03-01 is empty: its end comes first." in html
    assert run.pk not in html
    plain = operator.get(f"{LIST}?started_from=2026-03-01&started_to=2026-03-01").content.decode()
    assert "is empty" not in plain
