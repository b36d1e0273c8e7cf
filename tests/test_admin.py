"""The runs admin through Django's test client: pages, filters, permissions, the action."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from runs.admin import pagination
from runs.durations import duration, duration_formats, format_seconds
from runs.maintenance import fail_stuck_runs, monitor_tick
from runs.maintenance.stats_snapshot import refresh_stats_snapshot
from runs.models import Actor, MaintenanceAction, TenderRun
from tests import console
from tests.conftest import confirmed_mark_failed, statuses

LIST = "/admin/runs/tenderrun/"
STATS = "/admin/runs/tenderrun/stats/"
CLEANUP = "/admin/runs/tenderrun/cleanup/"
MIN = timedelta(minutes=1)


def detail(run: TenderRun) -> str:
    return f"{LIST}{run.pk}/change/"


def staff_client(*codenames: str, csrf: bool = False) -> Client:
    user = User.objects.create_user(f"staff-{len(codenames)}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def operator(db) -> Client:
    return staff_client("view_tenderrun", "mark_failed_tenderrun")


@pytest.fixture
def viewer(db) -> Client:
    return staff_client("view_tenderrun")


@pytest.fixture
def odd_runs(make_run):
    """Rows the live table may hold and that no page may choke on."""
    return [
        make_run(kind=None, run_type="review", started_ago=30 * MIN),
        make_run(status="cancelled", started_ago=600 * MIN),
        make_run(started_ago=-60 * MIN, message="未来的任务"),
        make_run(status="pending", progress=None, started_ago=MIN),
        make_run(
            status="failed",
            started_ago=90 * MIN,
            finished_at=None,
            message="很长的消息 😀 " * 70_000,
            error="错误 🚨 <script>alert(1)</script>",
            meta_json={"嵌套": {"列表": ["😀", {"深": "值"}]}, "n": 1.5},
            result_json=["a", {"b": None}],
            progress=7.5,
        ),
    ]


def test_list_shows_every_odd_row_sanely(operator, odd_runs):
    response = operator.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    for run in odd_runs:
        assert run.id in page
    assert "cancelled" in page and "not started yet" in page
    assert "<script>alert(1)</script>" not in page
    assert '<span class="run-odd-value">(7.5)</span>' in page  # the bar at 100 %, the value kept
    assert len(response.content) < 500_000  # the 1 MB message is previewed, not shipped


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=running", {0, 2}),
        ("status=__other__", {1}),
        ("kind=review", {0}),
        ("stuck=yes", {0}),
        ("stuck=no", {1, 2, 3, 4}),
        ("started=24h", {0, 1, 2, 3, 4}),
        ("started=today&status=pending", {3}),
        ("status=pending&started_from=2000-01-01&started_to=2999-12-31", {3}),
    ],
)
def test_filters(operator, odd_runs, query, expected):
    response = operator.get(f"{LIST}?{query}")
    assert response.status_code == 200
    shown = {i for i, run in enumerate(odd_runs) if run.id in response.content.decode()}
    assert shown == expected


DURATION_FORMATS = re.compile(
    r'<script id="run-duration-formats" type="application/json">(.*?)</script>', re.S
)
LIVE = re.compile(r'<span class="run-live" data-started="[^"]*">([^<]*)</span>')


@pytest.mark.parametrize(
    "language, units",
    [
        ("zh-hans", [["天", "小时"], ["小时", "分"], ["分", "秒"]]),
        ("en", [["d", "h"], ["h", "min"], ["min", "s"]]),
    ],
)
def test_the_page_gives_the_live_counter_the_servers_duration_patterns(
    viewer, make_run, language, units
):
    make_run(started_ago=5 * MIN)
    html = viewer.get(LIST, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    on_page = json.loads(DURATION_FORMATS.search(html).group(1))
    with translation.override(language):
        # The very patterns the Python formatter uses, in the page's language...
        assert on_page == json.loads(json.dumps(duration_formats()))
        # ...and filled with the page's fields they write what it writes.
        for seconds in (0, 59, 60, 3599, 3600, 3725, 48 * 3600 - 1, 48 * 3600, 10**7):
            assert format_seconds(seconds, on_page) == duration(timedelta(seconds=seconds))
        near_five_minutes = {format_seconds(s, on_page) for s in range(295, 360)}
    assert LIVE.search(html).group(1) in near_five_minutes  # the server's text of the run
    # A unit's ideographs are joined (never "小 / 时" at a line's end), its number kept close.
    shown = [re.sub(r"%\(\w+\)\d*d", "", f["pattern"]) for f in on_page]
    assert [pattern.replace("\u2060", "").split() for pattern in shown] == units
    assert all("\u2060" in pattern for pattern in shown[:2]) == (language == "zh-hans")


def test_invalid_custom_dates_are_ignored_with_a_warning(operator, odd_runs):
    response = operator.get(f"{LIST}?started_from=2026-13-45&started_to=yesterday", follow=True)
    assert response.status_code == 200
    assert "Ignored the date 2026-13-45" in response.content.decode()
    ancient = operator.get(f"{LIST}?started_from=0001-01-01", follow=True).content.decode()
    assert "Ignored the date 0001-01-01: use YYYY-MM-DD, a year from 1900 to 9998." in ancient


def test_project_filter_and_link(operator, odd_runs, make_run):
    response = operator.get(f"{LIST}?project={odd_runs[0].project_id}")
    assert response.status_code == 200 and odd_runs[0].id in response.content.decode()
    assert f"?project={odd_runs[0].project_id}" in operator.get(LIST).content.decode()


def test_search_by_run_id_project_id_and_text(operator, odd_runs):
    by_id = operator.get(f"{LIST}?q={odd_runs[2].id}").content.decode()
    assert odd_runs[2].id in by_id and odd_runs[0].id not in by_id
    by_project = operator.get(f"{LIST}?q={odd_runs[0].project_id}").content.decode()
    assert all(run.id in by_project for run in odd_runs)
    by_text = operator.get(f"{LIST}?q=未来的").content.decode()
    assert odd_runs[2].id in by_text and odd_runs[0].id not in by_text
    odd_search = operator.get(f"{LIST}?q=%00%ff' OR 1=1 --", follow=True)
    assert odd_search.status_code == 200 and "NUL byte" in odd_search.content.decode()


@pytest.mark.parametrize(
    ("path", "form"),
    [
        (CLEANUP, {"promise": "ab\x00c"}),
        (f"{LIST}?status=running", {"action": "mark_failed", "reason": "a\x00b"}),
    ],
)
def test_a_form_posted_with_a_nul_byte_goes_back_to_its_page_changing_nothing(path, form, make_run):
    run = make_run(started_ago=30 * MIN)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "b@example.invalid", "pw"))
    response = client.post(path, {**form, "_selected_action": [run.pk], "confirm": "1"})
    assert (response.status_code, response["Location"]) == (303, path)
    page = client.get(path).content.decode()
    assert "Nothing was changed: A parameter contains a NUL byte." in page
    assert TenderRun.objects.get(pk=run.pk).status == "running"
    assert not MaintenanceAction.objects.exists()


@pytest.mark.parametrize("path", ["//evil.com/", "/%2Fevil.com/", "/%00//evil.com", "/\\evil.com"])
def test_the_address_after_dropping_a_nul_byte_stays_on_this_site(path, client):
    """Never an open redirect: the address without the NUL byte is a path of this site."""
    for response in (client.get(f"{path}?x=%00"), client.post(path, {"a": "\x00"})):
        assert response.status_code in {302, 303}
        location = response["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def test_detail_page_is_read_only_and_shows_json_and_history(operator, odd_runs):
    run = odd_runs[4]
    page = operator.get(detail(run))
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;深&quot;: &quot;值&quot;" in html or '"深": "值"' in html
    assert 'name="_save"' not in html
    assert operator.post(detail(run), {"status": "success"}).status_code == 403
    assert statuses(run) == ["failed"]
    stuck = odd_runs[0]
    fail_stuck_runs(actor=Actor.CLI)
    auditor = console.staff_client("auditor", "view_tenderrun", "view_maintenanceaction")
    history = auditor.get(detail(stuck)).content.decode()
    assert "fail stuck runs" in history and "running" in history


def test_unknown_ids_and_bad_pages_do_not_500(operator, odd_runs):
    assert operator.get(f"{LIST}tr_nope/change/", follow=True).status_code == 200
    assert operator.get(f"{LIST}?p=99999").status_code in {200, 302}
    assert operator.get(f"{LIST}?o=99").status_code in {200, 302}
    assert operator.get(f"{LIST}?bogus=1").status_code in {200, 302}


def test_stats_page(viewer, odd_runs):
    response = viewer.get(STATS)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="status-kind-table"' in html and 'id="daily-chart"' in html
    # The odd rows hold no successful run: no durations to chart, and the page says so.
    assert 'id="duration-chart"' not in html and "No successful runs" in html
    assert "cancelled" in html


def test_a_failure_windows_heading_uses_the_languages_colon(viewer, make_run):
    for status in ("failed", "success"):
        make_run(status=status, started_ago=30 * MIN)
    refresh_stats_snapshot()
    english = viewer.get(STATS, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = viewer.get(STATS, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "<h3>Last 24 hours: 50 %" in english
    assert "<h3>最近 24 小时：50 %" in chinese


def test_a_lists_count_takes_the_languages_word_order(viewer, make_run):
    make_run()
    english = viewer.get(LIST, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = viewer.get(LIST, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert re.search(r"\n1 tender run\n", english)
    assert "招标任务：1 条" in chinese  # "1 招标任务" had no measure word
    projects = staff_client("view_tenderproject", "view_tenderrun").get(
        "/admin/runs/tenderproject/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert "招标项目：1 条" in projects.content.decode()


def test_staff_without_permission_sees_no_action_or_button_and_gets_403(viewer, make_run):
    run = make_run(started_ago=30 * MIN)
    html = viewer.get(LIST).content.decode()
    assert "mark_failed" not in html and "cleanup-stuck-runs" not in html
    assert viewer.post(LIST, confirmed_mark_failed(run.pk, reason="x")).status_code == 403
    assert viewer.get(CLEANUP).status_code == 403
    assert viewer.post(CLEANUP).status_code == 403
    assert statuses(run) == ["running"]
    assert not MaintenanceAction.objects.exists()


def test_non_staff_and_anonymous_go_to_login(client, make_run):
    run = make_run(started_ago=30 * MIN)
    for url in (LIST, STATS, CLEANUP, detail(run)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(User.objects.create_user("outsider", password="pw"))
    assert client.post(CLEANUP).status_code == 302
    assert statuses(run) == ["running"]


def test_csrf_is_enforced_on_the_action_and_the_button(make_run):
    run = make_run(started_ago=30 * MIN)
    client = staff_client("view_tenderrun", "mark_failed_tenderrun", csrf=True)
    action = confirmed_mark_failed(run.pk, reason="x")
    assert client.post(LIST, action).status_code == 403
    assert client.post(CLEANUP).status_code == 403
    assert statuses(run) == ["running"]


WHOLE_TABLE_COUNT = re.compile(
    r'SELECT COUNT\(\*\) AS "__count" FROM "tender_runs"(?!.*LIMIT)', re.S
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_unfiltered_list_counts_nothing_whole_and_runs_few_queries(make_run, monkeypatch):
    for n in range(120):
        make_run(status="success", started_ago=(n + 1) * MIN)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tender_runs")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 100)
    client = staff_client("view_tenderrun", "mark_failed_tenderrun")
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST)
    assert response.status_code == 200
    assert "about 120" in response.content.decode()
    sql = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in sql if "COUNT(" in s.upper() and "tender_runs" in s]
    assert len(sql) <= 10, sql

    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"{LIST}?status=success").status_code == 200
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 10001" in s for s in counts), counts
    assert not any(WHOLE_TABLE_COUNT.search(s) for s in counts)


def test_audit_log_is_browsable_and_read_only(operator, make_run):
    run = make_run(started_ago=30 * MIN, message="旧消息")
    fail_stuck_runs(actor=Actor.SCHEDULE)
    action = MaintenanceAction.objects.get()
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "r@example.invalid", "pw"))
    assert superuser.get("/admin/runs/maintenanceaction/").status_code == 200
    page = superuser.get(f"/admin/runs/maintenanceaction/{action.pk}/change/")
    assert page.status_code == 200 and run.id in page.content.decode()
    assert "旧消息" in page.content.decode()
    assert superuser.post(f"/admin/runs/maintenanceaction/{action.pk}/delete/").status_code == 403
    assert MaintenanceAction.objects.filter(pk=action.pk).exists()


def test_a_cleanup_in_two_batches_says_it_continued_in_one_more_action(db):
    first = MaintenanceAction.objects.create(
        kind="fail_stuck", actor="cli", affected_count=200, completed=True
    )
    later = MaintenanceAction.objects.create(
        kind="fail_stuck",
        actor="cli",
        affected_count=50,
        completed=True,
        parameters={MaintenanceAction.CONTINUES: first.pk},
    )
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "r@example.invalid", "pw"))
    page = superuser.get(f"/admin/runs/maintenanceaction/{first.pk}/change/").content.decode()
    assert f"Continued in one more action (#{later.pk}): 250 runs in all" in page


def test_a_report_mode_action_links_to_the_runs_it_would_have_failed(make_run, settings):
    settings.TENDEROPS_MONITOR_MODE = "report"
    stuck = [make_run(started_ago=30 * MIN) for _ in range(2)]
    live = make_run(started_ago=MIN)
    monitor_tick()
    action = MaintenanceAction.objects.get(kind="would_fail")
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "r@example.invalid", "pw"))
    page = superuser.get(f"/admin/runs/maintenanceaction/{action.pk}/change/").content.decode()
    link = re.search(r'<a href="([^"]+)" id="action-runs-link"', page).group(1)
    listed = superuser.get(link.replace("&amp;", "&")).content.decode()
    assert all(run.id in listed for run in stuck) and live.id not in listed
    # It changed nothing: the runs it would have failed, as found, not what was overwritten.
    assert "Runs it would have failed" in page and "status when found" in page
    assert "previous message" not in page and "Failed run records" not in page
    assert "“stuck runs not failed” digest" in page  # the alert it is told in


def test_an_action_says_whether_its_failing_is_in_an_alert_yet(make_run):
    from runs.maintenance.heartbeat import MONITOR

    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "r@example.invalid", "pw"))

    def said(action: MaintenanceAction) -> str:
        page = superuser.get(f"/admin/runs/maintenanceaction/{action.pk}/change/")
        return page.content.decode()

    make_run(started_ago=30 * MIN)
    fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR, alert=True)  # a stopped tick's
    stopped = MaintenanceAction.objects.get()
    assert "Not yet: a monitor tick tells it" in said(stopped)
    monitor_tick()
    assert "Told in the monitor&#x27;s alert digest" in said(stopped)
    make_run(started_ago=30 * MIN)
    by_hand = fail_stuck_runs(actor=Actor.CLI).action_id
    assert "a monitor tick tells it" not in said(MaintenanceAction.objects.get(pk=by_hand))


def test_a_mark_failed_confirmations_promise_is_no_cleanups(operator, make_run):
    """Both pages sign the runs they list: one's promise must not pass for the other's (the
    cleanup took a young run's "mark failed" promise and said it was no longer stuck)."""
    young = make_run(started_ago=MIN)
    promise = re.search(
        r'name="promise" value="([^"]+)"',
        operator.post(
            LIST, {"action": "mark_failed", "_selected_action": [young.pk]}
        ).content.decode(),
    ).group(1)
    answer = operator.post(CLEANUP, {"promise": promise}, follow=True).content.decode()
    assert "no longer valid" in answer and "Fixed" not in answer
    assert statuses(young) == ["running"] and not MaintenanceAction.objects.exists()


def test_every_page_says_when_the_monitor_fails_nothing(operator, settings):
    """In report mode the stats page's stuck count and the cleanup page looked as in fail
    mode: an operator could not tell why stuck runs stayed stuck."""
    settings.TENDEROPS_MONITOR_MODE = "report"
    for page in (LIST, f"{LIST}stats/", CLEANUP, "/admin/"):
        assert "Report mode: the monitor fails no run" in operator.get(page).content.decode()
    settings.TENDEROPS_MONITOR_MODE = "fail"
    assert 'id="report-mode"' not in operator.get(LIST).content.decode()
