"""Take the operations guide's screenshots from a freshly started demo, at 1440 px, in English
and in Chinese.

    rm -f var/tenderops.sqlite3
    TENDEROPS_TIME_ZONE=Asia/Shanghai DEMO_PORT=8123 make demo      # note the admin password
    .venv/bin/python docs/screenshots/take.py http://127.0.0.1:8123 <password>

The cleanup page is taken first, while the demo's stuck runs are still stuck; then it waits
(at most two minutes) for the monitor's first tick and takes the rest.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LIST = "/admin/runs/tenderrun/"


def log_in(page: Page, base: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def shot(page: Page, name: str, language: str, *, full: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=OUT / f"{name}-{language}.png", full_page=full)


def wait_for_the_monitor(page: Page, base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page.goto(f"{base}/admin/runs/maintenanceaction/")
        if page.locator("#result_list tbody tr").count():
            return
        page.wait_for_timeout(5_000)
    raise SystemExit("the monitor did not run within two minutes: is the demo's cluster up?")


def take(page: Page, base: str, language: str) -> None:
    page.goto(f"{base}{LIST}")
    shot(page, "runs-list", language)
    page.goto(f"{base}{LIST}?status=failed")
    shot(page, "runs-failed", language)
    page.goto(f"{base}{LIST}?status=running")
    young = page.locator("#result_list tbody tr th a").first.get_attribute("href")
    page.goto(f"{base}{young}")
    shot(page, "run-detail", language, full=True)
    page.click("#mark-failed-button")
    page.wait_for_selector("#fail-count")
    shot(page, "mark-failed-confirmation", language)
    page.goto(f"{base}{LIST}stats/")
    shot(page, "stats", language, full=True)
    page.goto(f"{base}/admin/runs/maintenanceaction/")
    shot(page, "audit-log", language)
    page.click("#result_list tbody tr th a")
    shot(page, "audit-action", language, full=True)
    page.goto(f"{base}{LIST}")
    page.click("#result_list tbody tr td.field-project_link a")
    page.click("#project-page-link")
    shot(page, "project", language)


def main(base: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {}
        for language, locale in (("en", "en-US"), ("zh", "zh-CN")):
            context = browser.new_context(locale=locale, viewport={"width": 1440, "height": 900})
            pages[language] = context.new_page()
            log_in(pages[language], base, password)
            pages[language].goto(f"{base}{LIST}cleanup/")
            shot(pages[language], "cleanup", language)
        wait_for_the_monitor(pages["en"], base)
        for language, page in pages.items():
            take(page, base, language)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
