"""Where the API is reached from: over plain HTTP behind the HTTPS redirect, under a
proxy's sub-path, from a Host not allowed. Machines get JSON answers, never a redirect."""

import io
import logging

import pytest

from tests.api_client import CLEANUP, HEALTH
from tests.conftest import statuses

pytestmark = pytest.mark.usefixtures("api_token")


@pytest.mark.parametrize("mounted", [{}, {"SCRIPT_NAME": "/ops"}], ids=["root", "sub-path"])
def test_behind_the_https_redirect_machines_are_refused_over_http_not_redirected(
    client, bearer, stuck, settings, mounted
):
    """A redirected POST did nothing, and curl -f exits 0 on a 301: a cron job thought the
    cleanup ran. The admin is still redirected to HTTPS. Under a proxy's prefix too (they
    were redirected there: found by the deployment attacker)."""
    settings.SECURE_SSL_REDIRECT = True
    for answer in (
        client.post(f"{CLEANUP}?timeout_minutes=10", **bearer, **mounted),
        client.get(HEALTH, **bearer, **mounted),
        client.get("/metrics", **bearer, **mounted),
    ):
        assert answer.status_code == 403
        assert "served over HTTPS only" in answer.json()["error"]
    assert statuses(stuck) == ["running"]
    cleanup = client.post(f"{CLEANUP}?timeout_minutes=10", secure=True, **bearer, **mounted)
    assert cleanup.status_code == 200
    assert statuses(stuck) == ["failed"]
    assert client.get("/admin/", **mounted).status_code == 301
    # A run whose id holds "api/apps/" is still the admin's (the reviewer).
    run_page = "/admin/runs/tenderrun/x/api/apps/y/change/"
    assert client.get(run_page, **mounted).status_code == 301


def test_under_a_sub_path_machines_get_json_errors_not_pages_or_redirects(client, bearer):
    mounted = {"SCRIPT_NAME": "/ops", "secure": True}
    unknown = client.get("/api/apps/tender/admin/nothing", **bearer, **mounted)
    assert unknown.status_code == 404 and "No such endpoint" in unknown.json()["error"]
    too_long = client.get(f"{HEALTH}?x={'a' * 2_500}", **bearer, **mounted)
    assert too_long.status_code == 400 and too_long.json()["error"]
    bad_host = client.get(HEALTH, HTTP_HOST="elsewhere.example", **bearer, **mounted)
    assert bad_host.status_code == 400 and "DJANGO_ALLOWED_HOSTS" in bad_host.json()["error"]


@pytest.mark.parametrize("path", [HEALTH, CLEANUP, "/metrics", "/admin/"])
def test_a_host_not_allowed_is_a_json_400_under_the_api(client, bearer, stuck, path):
    response = client.post(path, HTTP_HOST="evil.example", **bearer)
    assert response.status_code == 400
    if path == "/admin/":  # Django's page elsewhere
        assert response["Content-Type"].startswith("text/html")
    else:
        assert "DJANGO_ALLOWED_HOSTS" in response.json()["error"]
    assert statuses(stuck) == ["running"]


def test_a_host_not_allowed_is_logged_where_the_operator_looks(db, client):
    """Django says so only in debug mode: the admin was a bare 400 with no line in the log."""
    handlers = logging.getLogger("django.security").handlers
    (console,) = [handler for handler in handlers if handler.name == "console_one_line"]
    journal = io.StringIO()
    previous = console.setStream(journal)
    try:
        assert client.get("/admin/", HTTP_HOST="ops.example.org").status_code == 400
    finally:
        console.setStream(previous)
    (line,) = journal.getvalue().splitlines()  # one line, no traceback per request
    assert "DisallowedHost" in line and "ops.example.org" in line


def test_a_bug_is_a_json_500_under_the_api_and_a_page_elsewhere(client, bearer, admin_client):
    """An error no view expected ended in Django's HTML page: a client reading ``error``
    got a parse error instead. The admin keeps Django's page."""
    from runs import api
    from runs.admin import views

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "monitor_health", bug)
        patch.setattr(views, "read_stats_snapshot", bug)
        client.raise_request_exception = admin_client.raise_request_exception = False
        answer = client.get(HEALTH, **bearer)
        page = admin_client.get("/admin/runs/tenderrun/stats/")
    assert answer.status_code == 500 and "log has the details" in answer.json()["error"]
    assert "a bug" not in answer.content.decode() and "no-store" in answer["Cache-Control"]
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
