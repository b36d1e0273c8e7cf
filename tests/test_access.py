"""Who may do what, at every entry point; bad input everywhere; secrets never shown."""

import io
import json
import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runs.admin.actions import CLEANUP as CLEANUP_PROMISE
from runs.admin.actions import promise_for
from runs.maintenance.selection import promise_of
from runs.models import MaintenanceAction, TenderRun
from tests.conftest import back_to_running, confirmed_mark_failed

MIN = timedelta(minutes=1)
TOKEN = "matrix-token-9f3c"
LIST = "/admin/runs/tenderrun/"
API_CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
API_HEALTH = "/api/apps/tender/admin/health"


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.TENDEROPS_API_TOKEN = TOKEN


def client_for(who: str) -> Client:
    client = Client()
    if who == "anonymous":
        return client
    perms = {
        "non_staff": [],
        "staff_nothing": [],
        "staff_viewer": ["view_tenderrun"],
        "staff_operator": ["view_tenderrun", "mark_failed_tenderrun"],
    }
    if who == "superuser":
        user = User.objects.create_superuser(who, f"{who}@example.invalid", "pw")
    else:
        user = User.objects.create_user(who, password="pw", is_staff=who != "non_staff")
        user.user_permissions.add(*Permission.objects.filter(codename__in=perms[who]))
    client.force_login(user)
    return client


def entry_points(run: TenderRun) -> dict[str, tuple[str, str, dict]]:
    action = {"action": "mark_failed", "index": "0", "_selected_action": [run.pk]}
    return {
        "list": ("get", LIST, {}),
        "detail": ("get", f"{LIST}{run.pk}/change/", {}),
        "action": ("post", LIST, action),
        "action-confirm": ("post", LIST, confirmed_mark_failed(run.pk, reason="r")),
        "cleanup-preview": ("get", f"{LIST}cleanup/", {}),
        "cleanup": (
            "post",
            f"{LIST}cleanup/",
            {"promise": promise_for(promise_of([run.pk]), CLEANUP_PROMISE)},
        ),
        "stats": ("get", f"{LIST}stats/", {}),
        "api-cleanup": ("post", API_CLEANUP, {}),
        "api-health": ("get", API_HEALTH, {}),
    }


LOGIN, DONE = "login", "done"  # 302 to the login page / 302 back to the list after a change
EXPECTED = {
    #                 list detail action confirm preview cleanup stats api  health
    "anonymous":      (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 401, 401),
    "non_staff":      (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 401, 401),
    "staff_nothing":  (403, 403, 403, 403, 403, 403, 403, 403, 403),
    "staff_viewer":   (200, 200, 403, 403, 403, 403, 200, 403, 503),
    "staff_operator": (200, 200, 200, DONE, 200, DONE, 200, 200, 503),
    "superuser":      (200, 200, 200, DONE, 200, DONE, 200, 200, 503),
}  # fmt: skip
CHANGES = {"action-confirm", "cleanup", "api-cleanup"}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_access_matrix(who, make_run):
    run = make_run(started_ago=30 * MIN)
    client = client_for(who)
    for (name, (method, url, data)), expected in zip(
        entry_points(run).items(), EXPECTED[who], strict=True
    ):
        back_to_running(run.pk)
        MaintenanceAction.objects.all().delete()
        response = getattr(client, method)(url, data)
        status = response.status_code
        if status == 302:
            status = LOGIN if "/admin/login/" in response["Location"] else DONE
        assert status == expected, (who, name, response.status_code)
        changed = TenderRun.objects.get(pk=run.pk).status == "failed"
        allowed = name in CHANGES and expected in {200, DONE}
        assert changed == allowed, (who, name)
        assert MaintenanceAction.objects.exists() == changed


@pytest.mark.parametrize(
    "headers, query, expected",
    [
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, "", 200),
        ({"HTTP_AUTHORIZATION": "Bearer not-the-token"}, "", 401),
        ({}, "", 401),
        ({}, f"?token={TOKEN}", 401),
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, f"?access_token={TOKEN}", 401),
    ],
    ids=["right", "wrong", "missing", "in-query", "header-and-query"],
)
def test_token_matrix_for_both_endpoints(client, make_run, headers, query, expected):
    run = make_run(started_ago=30 * MIN)
    cleanup = client.post(f"{API_CLEANUP}{query}", **headers)
    assert cleanup.status_code == expected
    assert TenderRun.objects.get(pk=run.pk).status == ("failed" if expected == 200 else "running")
    health = client.get(f"{API_HEALTH}{query}", **headers)
    assert health.status_code == (503 if expected == 200 else 401)  # the monitor never ran


def test_csrf_on_every_session_post(make_run):
    run = make_run(started_ago=30 * MIN)
    user = User.objects.create_superuser("csrf", "c@example.invalid", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for url, data in [
        (LIST, confirmed_mark_failed(run.pk, reason="r")),
        (f"{LIST}cleanup/", {}),
        (API_CLEANUP, {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert TenderRun.objects.get(pk=run.pk).status == "running"
    assert not MaintenanceAction.objects.exists()


def test_no_secret_in_logs_or_responses(client, make_run, caplog, settings):
    make_run(started_ago=30 * MIN)
    caplog.set_level(logging.DEBUG)
    bodies = [
        client.post(f"{API_CLEANUP}?token={TOKEN}").content,
        client.post(API_CLEANUP, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").content,
        client.get(API_HEALTH, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content,
        client.post(API_CLEANUP, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content,
    ]
    out = io.StringIO()
    call_command("cleanup_stuck_runs", "--dry-run", "--json", stdout=out)
    secrets = [TOKEN, settings.SECRET_KEY]
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret.encode() not in body for body in bodies)
        assert secret not in out.getvalue()


@pytest.fixture
def odd_rows(make_run):
    return {
        "null_kind": make_run(kind=None, run_type="review", started_ago=30 * MIN),
        "unknown": make_run(status="cancelled", started_ago=300 * MIN),
        "future": make_run(started_ago=-30 * MIN),
        "huge": make_run(
            started_ago=40 * MIN,
            progress=None,
            message="长" * 1_000_000 + "😀",
            meta_json={"深": {"列表": ["😀", None, 1.5]}},
        ),
    }


def test_cli_and_api_handle_odd_rows(client, odd_rows):
    table = io.StringIO()
    call_command("cleanup_stuck_runs", "--dry-run", stdout=table)
    listed = table.getvalue()
    assert odd_rows["null_kind"].id in listed and odd_rows["huge"].id in listed
    assert "review" in listed
    assert odd_rows["future"].id not in listed and odd_rows["unknown"].id not in listed
    response = client.post(API_CLEANUP, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    fixed = {run["id"] for run in response.json()["stuck_runs"]}
    assert fixed == {odd_rows["null_kind"].id, odd_rows["huge"].id}
    statuses = dict(TenderRun.objects.values_list("pk", "status"))
    assert statuses[odd_rows["future"].pk] == "running"
    assert statuses[odd_rows["unknown"].pk] == "cancelled"
    detail = client_for("superuser").get(f"{LIST}{odd_rows['huge'].pk}/change/")
    assert detail.status_code == 200


cli_text = st.text(max_size=30)


@hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(timeout=cli_text, kind=cli_text, extra=st.sampled_from([[], ["--json"], ["--dry-run"]]))
def test_cli_bad_input_is_a_clear_error_and_changes_nothing(make_run, timeout, kind, extra):
    run = make_run(started_ago=60 * MIN)
    args = ["--timeout", timeout, "--kind", kind, "--auto-fix", *extra]
    args = [a for a in args if a != "--dry-run"] if "--dry-run" in extra else args
    try:
        call_command("cleanup_stuck_runs", *args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as error:
        assert str(error)
        assert TenderRun.objects.get(pk=run.pk).status == "running"
    back_to_running(run.pk)


admin_text = st.text(max_size=60)


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=admin_text, started_from=admin_text, started_to=admin_text, page=admin_text)
def test_admin_list_never_500s_on_any_query(make_run, q, started_from, started_to, page):
    make_run(started_ago=30 * MIN)
    client = Client(raise_request_exception=False)
    client.force_login(
        User.objects.get_or_create(username="hyp", is_staff=True, is_superuser=True)[0]
    )
    response = client.get(
        LIST, {"q": q, "started_from": started_from, "started_to": started_to, "p": page}
    )
    assert response.status_code in {200, 302}


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reason=st.text(max_size=2100))
def test_mark_failed_reason_any_text_is_saved_or_refused_cleanly(make_run, reason):
    run = make_run(started_ago=30 * MIN)
    client = Client(raise_request_exception=False)
    client.force_login(
        User.objects.get_or_create(username="hyp2", is_staff=True, is_superuser=True)[0]
    )
    response = client.post(LIST, confirmed_mark_failed(run.pk, reason=reason))
    # 303: a NUL byte, back to the page saying nothing was changed (runs/middleware.py)
    assert response.status_code in {200, 302, 303}
    assert (response.status_code == 303) == ("\x00" in reason)
    failed = TenderRun.objects.get(pk=run.pk).status == "failed"
    assert failed == (response.status_code == 302)
    if failed:
        assert json.dumps(TenderRun.objects.get(pk=run.pk).message)
    back_to_running(run.pk)
