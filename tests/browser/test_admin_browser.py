"""The admin in a real Chromium against a live server."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import F

from runs.models import FailedRunRecord, MaintenanceAction, TenderRun
from tests.browser.conftest import log_in, new_page

MIN = timedelta(minutes=1)
PASSWORD = "correct horse battery"
STUCK = 60  # more than a page (50), so "select all" really selects across pages


@pytest.fixture
def operator(transactional_db) -> User:
    return User.objects.create_superuser("operator", "op@example.invalid", PASSWORD)


@pytest.fixture
def runs(make_run):
    stuck = [make_run(started_ago=(20 + n) * MIN, message="提取中...") for n in range(STUCK)]
    live = [make_run(started_ago=MIN) for _ in range(3)]
    done = [make_run(status="success", started_ago=(30 + n) * MIN) for n in range(5)]
    TenderRun.objects.filter(pk__in=[r.pk for r in done]).update(
        finished_at=F("started_at") + timedelta(minutes=4)
    )
    return stuck, live, done


def test_operator_fails_every_stuck_run_across_pages_with_a_reason(
    browser, live_server, operator, runs, artifacts
):
    stuck, live, done = runs
    page = new_page(browser)
    log_in(page, live_server.url, "operator", PASSWORD)
    page.goto(f"{live_server.url}/admin/runs/tenderrun/")
    page.screenshot(path=artifacts / "runs-list.png")

    page.get_by_role("link", name="Yes", exact=True).click()
    page.wait_for_url("**stuck=yes**")
    assert page.locator("#result_list tbody tr").count() == 50
    page.click("#action-toggle")
    page.click(".question a")  # "Select all 60 tender runs"
    page.select_option("select[name=action]", "mark_failed")
    page.click("button[name=index]")

    page.wait_for_selector("#fail-count")
    assert f"{STUCK} runs will be marked failed" in page.inner_text("#fail-count")
    page.fill("textarea[name=reason]", "worker 容器重启，任务已中断")
    page.screenshot(path=artifacts / "mark-failed-confirmation.png")
    page.click("input[name=confirm]")

    message = page.wait_for_selector(".messagelist .success")
    assert f"{STUCK} runs marked failed, 0 runs skipped" in message.inner_text()
    failed = set(TenderRun.objects.filter(status="failed").values_list("pk", flat=True))
    assert failed == {run.pk for run in stuck}
    action = MaintenanceAction.objects.get()
    assert (action.username, action.reason, action.affected_count) == (
        "operator",
        "worker 容器重启，任务已中断",
        STUCK,
    )
    assert FailedRunRecord.objects.filter(action=action).count() == STUCK
    assert set(
        TenderRun.objects.filter(pk__in=[r.pk for r in live]).values_list("status", flat=True)
    ) == {"running"}


def test_stats_page_has_its_charts_and_table(browser, live_server, operator, runs, artifacts):
    page = new_page(browser)
    log_in(page, live_server.url, "operator", PASSWORD)
    page.click("text=Tender run statistics")
    page.wait_for_selector("#status-kind-table")
    assert page.locator("#daily-chart rect").count() > 0
    assert page.locator("#duration-chart").count() == 1
    header = page.text_content("#status-kind-table thead")  # as written, not as CSS shows it
    assert "extract_project_info" in header
    assert page.inner_text("#stuck-now") == str(STUCK)
    page.screenshot(path=artifacts / "stats.png", full_page=True)


def test_chinese_browser_gets_a_chinese_admin(browser, live_server, operator, runs, artifacts):
    page = new_page(browser, locale="zh-CN")
    log_in(page, live_server.url, "operator", PASSWORD)
    page.goto(f"{live_server.url}/admin/runs/tenderrun/")
    assert page.get_by_role("link", name="立即清理卡住的任务").is_visible()
    filters = page.inner_text("#changelist-filter")
    assert "卡住" in filters and "最近 24 小时" in filters
    assert "运行中" in page.inner_text("#result_list")
    page.screenshot(path=artifacts / "runs-list-zh.png")
    page.goto(f"{live_server.url}/admin/runs/tenderrun/stats/")
    assert "按状态和类型统计任务" in page.inner_text("#content")
