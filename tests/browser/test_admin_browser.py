"""The admin in a real Chromium against a live server."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import F
from django.utils import translation
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from runs.durations import duration
from runs.models import FailedRunRecord, MaintenanceAction, TenderRun
from tests.browser.conftest import WAIT_MS, log_in, new_page

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
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the sample table scrolls
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
    page.click("input[name=confirm]")

    message = page.wait_for_selector(".messagelist .success")
    assert f"{STUCK} runs marked failed." in message.inner_text()
    assert "skipped" not in message.inner_text()
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

    # The audit on a phone: the table scrolls; its words are never broken letter by letter.
    audit_pages = [f"runs/maintenanceaction/{action.pk}", f"runs/tenderrun/{stuck[0].pk}"]
    for address, cell in zip(audit_pages, ["#failed-runs td", ".run-audit td"], strict=True):
        page.goto(f"{live_server.url}/admin/{address}/change/")
        assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
        heights = page.eval_on_selector_all(
            f"{cell}:not(.run-free-text)", "cells => cells.map(c => c.clientHeight)"
        )
        assert heights and max(heights) < 2 * min(heights), (address, heights)


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
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: charts scroll, not shrink
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
    assert page.eval_on_selector("#daily-chart", "chart => chart.clientWidth") >= 600


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
    assert "按状态和类型统计的任务" in page.inner_text("#content")


@pytest.mark.parametrize(
    "locale, language, shape, foreign_units",
    [
        # A no-break space between a number and its unit (durations.unbroken).
        ("zh-CN", "zh-hans", r"^\d+\u00a0分 \d{2}\u00a0秒$", ["min", "\u00a0s"]),
        ("en-US", "en", r"^\d+\u00a0min \d{2}\u00a0s$", ["分", "秒"]),
    ],
)
def test_live_counter_ticks_in_the_language_of_the_page(
    browser, live_server, operator, runs, locale, language, shape, foreign_units
):
    page = new_page(browser, locale=locale)
    log_in(page, live_server.url, "operator", PASSWORD)
    page.goto(f"{live_server.url}/admin/runs/tenderrun/")
    counter = page.locator(".run-live").first  # a run started a minute ago: it ticks seconds
    before = counter.text_content()
    page.wait_for_function(
        "([el, before]) => el.textContent !== before", arg=[counter.element_handle(), before]
    )
    after = counter.text_content()
    for text in (before, after):
        assert re.match(shape, text), text
        assert not any(unit in text for unit in foreign_units), text

    # Across every format and its edges, the counter writes exactly what the server writes.
    # The browser's clock is two hours slow and stands still; the counter counts on the
    # database's (when the page's rows were read), so spans that started that many seconds
    # before it show exactly that, one tick later.
    samples = [0, 59, 60, 61, 303, 3599, 3600, 3725, 48 * 3600 - 1, 48 * 3600, 200_000, 10**7]
    with translation.override(language):
        expected = [duration(timedelta(seconds=s)) for s in samples]
    page.clock.set_fixed_time(time.time() - 2 * 3600)
    page.reload()
    page.evaluate(
        """(samples) => {
            const spans = document.querySelectorAll(".run-live");
            const listed = Date.parse(JSON.parse(
                document.getElementById("run-listed-at").textContent));
            samples.forEach((seconds, i) => {
                const started = new Date(listed - seconds * 1000);
                spans[i].setAttribute("data-started", started.toISOString());
            });
        }""",
        samples,
    )
    try:
        page.wait_for_function(
            """(expected) => {
                const spans = document.querySelectorAll(".run-live");
                return expected.every((text, i) => spans[i].textContent === text);
            }""",
            arg=expected,
            timeout=WAIT_MS,
        )
    except PlaywrightTimeoutError:
        shown = page.eval_on_selector_all(".run-live", "spans => spans.map(s => s.textContent)")
        pytest.fail(f"the live counter wrote {shown[: len(samples)]}, the server {expected}")
