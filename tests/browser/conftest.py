import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import REPO

# Playwright's sync API runs an event loop in this thread; the ORM calls of these tests are
# still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("TENDEROPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Playwright's 5 s default is tight on a machine whose cores another suite keeps busy: a
# wait ends as soon as its condition holds, so a longer bound costs a passing test nothing.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def close_pages(browser: Browser) -> Iterator[None]:
    """Each test's pages close with it: a page left open would go on refreshing itself
    against a live server that is gone, or a port another test reuses."""
    yield
    for context in browser.contexts:
        context.close()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def new_page(browser: Browser, locale: str = "en-US", width: int = 1440, **options) -> Page:
    context = browser.new_context(
        locale=locale, viewport={"width": width, "height": 900}, **options
    )
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


OPERATOR_PASSWORD = "correct horse battery staple"


@pytest.fixture
def superuser(transactional_db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("operator", "op@example.invalid", OPERATOR_PASSWORD)


def signed_in(browser: Browser, base_url: str, locale: str = "en-US", **options) -> Page:
    """A page of a new browser context, logged in as the ``superuser`` fixture's operator."""
    page = new_page(browser, locale, **options)
    log_in(page, base_url, "operator", OPERATOR_PASSWORD)
    return page
