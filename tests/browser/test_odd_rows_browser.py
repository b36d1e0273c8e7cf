"""Odd rows of the live table, as an operator sees them in Chromium (English and Chinese)."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from tests.browser.conftest import log_in, new_page

PASSWORD = "correct horse battery"


@pytest.fixture
def odd_rows(transactional_db, make_run):
    rows = {
        "infinite": make_run(message="开始时间是 infinity"),
        "before_time": make_run(status="failed", message="开始时间是 -infinity"),
        "nan": make_run(message="进度是 NaN"),
        "blank_kind": make_run(kind="   ", run_type="review", message="kind 为空白"),
        "unknown": make_run(status="cancelled", message="未知状态"),
        "long": make_run(message="很长的消息" * 2000),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tender_runs SET started_at = 'infinity' WHERE id = %s", [rows["infinite"].pk]
        )
        cursor.execute(
            "UPDATE tender_runs SET started_at = '-infinity' WHERE id = %s",
            [rows["before_time"].pk],
        )
        cursor.execute("UPDATE tender_runs SET progress = 'NaN' WHERE id = %s", [rows["nan"].pk])
    User.objects.create_superuser("operator", "op@example.invalid", PASSWORD)
    return rows


@pytest.mark.postgres  # infinity and NaN timestamps exist only there
@pytest.mark.parametrize(
    ("locale", "suffix", "note"), [("en-US", "en", "impossible"), ("zh-CN", "zh", "开始时间异常")]
)
def test_odd_rows_are_shown_sanely(browser, live_server, odd_rows, artifacts, locale, suffix, note):
    page = new_page(browser, locale=locale)
    log_in(page, live_server.url, "operator", PASSWORD)
    response = page.goto(f"{live_server.url}/admin/runs/tenderrun/")
    assert response.status == 200
    notice = page.locator("#impossible-starts")
    assert note in notice.inner_text()
    assert notice.inner_text().startswith("1 ")  # the running one; the failed one needs nobody
    # Below the buttons, which float up beside the title (they covered it: the new operator).
    buttons, box = page.locator(".object-tools").bounding_box(), notice.bounding_box()
    assert box["y"] >= buttons["y"] + buttons["height"], (box, buttons)
    notice.locator("a").click()  # to the runs it counts, not every impossible start
    page.wait_for_url("**started=impossible**")
    assert page.locator("#result_list tbody tr").count() == 1
    page.go_back()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == len(odd_rows)
    text = page.inner_text("#result_list")
    assert "infinity" in text and "review" in text and "cancelled" in text
    # Kept under test-artifacts; docs/screenshots/odd-rows-*.png are copies of these.
    page.screenshot(path=artifacts / f"odd-rows-{suffix}.png", full_page=False)
    detail = page.goto(f"{live_server.url}/admin/runs/tenderrun/{odd_rows['infinite'].pk}/change/")
    assert detail.status == 200


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_huge_or_reversing_kind_keeps_the_pages_on_the_screen(
    browser, live_server, transactional_db, make_run, artifacts, locale
):
    from datetime import timedelta

    from runs.maintenance import fail_stuck_runs
    from runs.maintenance.stats_snapshot import refresh_stats_snapshot
    from runs.models import Actor

    hours = timedelta(hours=2)
    huge = make_run(kind="k" * 5000, started_ago=hours)
    make_run(kind="rev\u202eiew", started_ago=hours)
    make_run(kind="risks", status="success", started_ago=hours, finished_at=None)
    assert fail_stuck_runs(actor=Actor.CLI).fixed_count == 2
    make_run(kind="k" * 5000)  # running, not stuck
    refresh_stats_snapshot()
    User.objects.create_superuser("operator", "op@example.invalid", PASSWORD)
    page = new_page(browser, locale=locale)
    log_in(page, live_server.url, "operator", PASSWORD)
    for address in ("stats/", "", f"{huge.pk}/change/"):
        page.goto(f"{live_server.url}/admin/runs/tenderrun/{address}")
        wider = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert wider <= 0, (address, wider)
        assert "\u202e" not in page.inner_text("body"), address
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: its tables scroll instead
    page.goto(f"{live_server.url}/admin/runs/tenderrun/stats/")
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/admin/runs/tenderrun/stats/")
    by_kind = page.locator(".chart-legend").filter(has=page.locator("[class*=chart-kind]"))
    legend = by_kind.inner_text()
    assert "rev<U+202E>iew" in legend and "risks" not in legend  # risks failed nothing
    page.screenshot(path=artifacts / f"odd-kinds-stats-{locale}.png", full_page=True)
