"""Acting where one looks (mark failed from a run's page, the warning about young runs) and
the tidy edges: the site's name, the scheduler's heading, the monitor starting, calm dry runs,
empty errors, seconds."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from runs.maintenance.heartbeat import MONITOR, beat
from runs.maintenance.stats_snapshot import refresh_stats_snapshot
from runs.models import MaintenanceAction, TenderRun
from runs.schedules import MONITOR_SCHEDULE
from tests.conftest import scheduled_ago, statuses
from tests.console import CLEANUP, LIST, STATS, staff_client

MIN = timedelta(minutes=1)


@pytest.fixture
def operator(db):
    return staff_client("operator", "view_tenderrun", "mark_failed_tenderrun")


@pytest.fixture
def viewer(db):
    return staff_client("viewer", "view_tenderrun")


def detail(run) -> str:
    return f"{LIST}{quote(run.pk)}/change/"  # as the admin links it


def promise(html: str) -> str:
    return re.search(r'name="promise" value="([^"]*)"', html).group(1)


def test_mark_failed_from_a_runs_page(operator, make_run):
    run = make_run(started_ago=30 * MIN, message="提取中...")
    page = operator.get(detail(run)).content.decode()
    assert 'id="mark-failed-button"' in page
    form = {
        "action": "mark_failed",
        "index": "0",
        "select_across": "0",
        "from_detail": "1",
        "_selected_action": run.pk,
    }
    confirmation = operator.post(LIST, form).content.decode()
    assert "1 run will be marked failed." in confirmation
    assert 'value="Yes, mark it failed"' in confirmation
    assert f'href="{detail(run)}" class="button cancel-link"' in confirmation
    assert statuses(run) == ["running"]
    done = operator.post(
        LIST, {**form, "confirm": "1", "reason": "容器重启", "promise": promise(confirmation)}
    )
    assert done.status_code == 302 and done["Location"] == detail(run)
    assert statuses(run) == ["failed"]
    action = MaintenanceAction.objects.get()
    assert (action.kind, action.username, action.reason) == ("mark_failed", "operator", "容器重启")
    assert "1 run marked failed" in operator.get(detail(run)).content.decode()


def test_a_selection_with_nothing_to_fail_gets_no_confirmation_page(operator, make_run):
    finished, paused = make_run(status="success"), make_run(status="paused")
    post = {"action": "mark_failed", "index": "0", "_selected_action": [finished.pk, paused.pk]}
    response = operator.post(f"{LIST}?o=1", post)
    assert response.status_code == 302  # back to the list, no button to fail nothing
    html = operator.get(response["Location"]).content.decode()
    assert "Nothing to mark failed: none of the selected runs is pending or running." in html
    assert statuses(finished, paused) == ["success", "paused"]


def test_no_button_without_the_permission_or_for_a_finished_run(viewer, operator, make_run):
    running, done = make_run(), make_run(status="success")
    assert 'id="mark-failed-button"' not in viewer.get(detail(running)).content.decode()
    assert 'id="mark-failed-button"' not in operator.get(detail(done)).content.decode()
    form = {"action": "mark_failed", "index": "0", "_selected_action": running.pk}
    assert viewer.post(LIST, {**form, "from_detail": "1"}).status_code == 403


def test_confirmation_warns_about_running_runs_that_are_not_stuck(operator, make_run):
    young = [make_run(started_ago=2 * MIN) for _ in range(2)]
    stuck = make_run(started_ago=30 * MIN)
    pending = make_run(status="pending", started_ago=MIN)
    post = {"action": "mark_failed", "index": "0", "select_across": "0"}
    ids = [r.pk for r in (*young, stuck, pending)]
    html = operator.post(LIST, {**post, "_selected_action": ids}).content.decode()
    assert "2 of them are running and not stuck" in html
    # The pending run of a minute: a worker may still pick it up (waiting means 30 min).
    assert "1 of them has been pending for less than 30 minutes" in html
    assert html.count('class="run-not-stuck"') == 3
    waiting = make_run(status="pending", started_ago=45 * MIN)
    calm = operator.post(LIST, {**post, "_selected_action": [stuck.pk, waiting.pk]})
    assert 'id="young-running"' not in calm.content.decode()
    assert 'id="young-pending"' not in calm.content.decode()


def test_site_is_tenderops_and_the_scheduler_has_one_heading(operator, viewer, make_run):
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "r@example.invalid", "pw"))
    index = superuser.get("/admin/").content.decode()
    assert "<title>Operations console | tenderops</title>" in index  # not the app's name
    assert ">tenderops</a>" in index and "Django administration" not in index
    assert "Scheduler" in index and "Django Q2" not in index
    assert "Recent actions" not in index and "View site" not in index
    operators_index = operator.get("/admin/").content.decode()
    assert "Scheduler" not in operators_index and "Tender runs" in operators_index
    assert operator.get("/admin/django_q/schedule/").status_code == 403
    # In Chinese the scheduler's jobs are 后台作业: 任务 are tender runs on every other page.
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    index = superuser.get("/admin/", **zh).content.decode()
    assert "失败的后台作业" in index and "失败的任务" not in index
    # The runs' section first in every language (Django orders them by translated name).
    for page in (index, superuser.get("/admin/").content.decode()):
        runs, *others = (
            page.index(f'class="app-{label} ') for label in ("runs", "auth", "django_q")
        )
        assert runs < min(others)
    schedules = superuser.get("/admin/django_q/schedule/", **zh).content.decode()
    assert "名称" in schedules and "函数" in schedules and ">Name<" not in schedules
    assert "<span>上次运行</span>" in schedules
    english = superuser.get("/admin/django_q/schedule/").content.decode()
    assert "<span>Last run</span>" in english and ">last_run<" not in english.lower()


def monitor_card(html: str) -> str:
    start = html.index('id="monitor-health"')
    return html[start : html.index("</div>", start)]


def test_the_monitor_is_starting_not_stale_in_its_first_interval(viewer, make_run):
    assert Schedule.objects.filter(name=MONITOR_SCHEDULE).exists()  # made by migrate
    scheduled_ago(timedelta(seconds=20))  # migrate, then the cluster, 20 s ago
    html = viewer.get(STATS).content.decode()
    assert "starting" in monitor_card(html) and "stat-alert" not in monitor_card(html)
    assert "errornote" not in html

    scheduled_ago(3 * MIN)  # made three intervals ago, never ran
    refresh_stats_snapshot()  # the page shows the snapshot the cluster keeps fresh
    html = viewer.get(STATS).content.decode()
    assert "stale" in monitor_card(html) and "stat-alert" in html
    assert "errornote" in html

    beat(MONITOR, {"fixed_count": 0})
    refresh_stats_snapshot()
    html = viewer.get(STATS).content.decode()
    assert ">OK<" in monitor_card(html) and "ago)" in monitor_card(html)
    assert re.search(r"last run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(0\smin \d\d\ss ago\)", html)


def test_a_dry_run_without_stuck_runs_is_not_an_alarm(operator, make_run):
    make_run(started_ago=MIN)
    calm = operator.get(CLEANUP).content.decode()
    assert 'class="run-calm">No run is stuck now: nothing to clean up.' in calm
    make_run(started_ago=30 * MIN)
    alarm = operator.get(CLEANUP).content.decode()
    assert 'class="run-alarm">1 run is stuck now and will be marked failed.' in alarm
    assert "Dry run" not in alarm  # the API's word; here the page is the preview
    assert "市政道路改造工程" in alarm and "silent too long" in alarm  # the project, the why


def test_the_cleanup_sentence_is_one_translated_sentence(operator, make_run, settings):
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 20}
    html = operator.get(CLEANUP, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "运行中的任务在超过其超时时间（10 分钟）仍未更新状态、进度或消息" in html
    assert "运行时间已超过 240 分钟（即使仍在写入进度）时，视为卡住。" in html
    assert "各类型的超时（分钟）：review 20。" in html
    settings.TENDEROPS_STUCK_RULE = "age"
    html = operator.get(CLEANUP, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "任务运行时间超过超时阈值即视为卡住：10 分钟。" in html


def test_run_page_shows_a_dash_for_an_empty_error_and_keeps_seconds(operator, make_run):
    run = make_run(status="success", error="", message=None)
    html = operator.get(detail(run)).content.decode()
    error = html[html.index("field-error_full") :][:400]
    assert '<div class="readonly">–</div>' in error
    started = timezone.localtime(run.started_at).strftime("%Y-%m-%d %H:%M:%S")
    assert started in html


def test_the_unfiltered_list_offers_no_show_all_and_names_its_place(viewer, make_run):
    make_run()
    html = viewer.get(LIST).content.decode()
    assert "(Show all)" not in re.sub(r"<[^>]+>", "", html)  # it shows all already
    assert "Operations" in html and "Tender runs</a> &rsaquo; Tender runs" not in html
    searched = re.sub(r"<[^>]+>", "", viewer.get(f"{LIST}?status=failed").content.decode())
    assert "0 results (Show all)" in searched  # filtered, Django's way back to all


def test_a_runs_page_gives_its_finish_time_in_full(viewer, make_run):
    from django.db.models import F

    run = make_run(status="failed")
    TenderRun.objects.filter(pk=run.pk).update(finished_at=F("started_at") + 3 * MIN)
    run.refresh_from_db()
    html = viewer.get(detail(run)).content.decode()
    finished = re.search(r'field-finished_in_full.*?<div class="readonly">(.*?)</div>', html, re.S)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", finished.group(1).strip())


def test_ids_that_the_admin_would_unquote_still_link_to_their_pages(operator, make_run):
    """The admin reads "_40" in an address as "@": ids holding it must be quoted in links."""
    from runs.models import TenderProject

    odd_project = TenderProject.objects.create(id="tp_22548ea23c", name="智慧园区建设项目")
    run = make_run(started_ago=30 * MIN)
    TenderRun.objects.filter(pk=run.pk).update(id="tr_40abc", project=odd_project)
    odd = TenderRun.objects.get(pk="tr_40abc")
    page = operator.get(f"{LIST}{quote(odd.pk)}/change/")
    assert page.status_code == 200
    assert (
        f'href="/admin/runs/tenderproject/{quote(odd_project.pk)}/change/"' in page.content.decode()
    )
    form = {
        "action": "mark_failed",
        "index": "0",
        "select_across": "0",
        "from_detail": "1",
        "_selected_action": odd.pk,
    }
    confirmation = operator.post(LIST, form).content.decode()
    done = operator.post(
        LIST, {**form, "confirm": "1", "reason": "r", "promise": promise(confirmation)}
    )
    assert done["Location"] == f"{LIST}{quote(odd.pk)}/change/"
    assert operator.get(done["Location"]).status_code == 200
