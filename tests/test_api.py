"""The HTTP API: every status code, both auth paths, and no 500 for any input."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models.functions import Now
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runs.maintenance import MONITOR, monitor_tick
from runs.models import FailedRunRecord, Heartbeat, MaintenanceAction, TenderRun
from tests.api_client import CLEANUP, HEALTH, MIN, TOKEN
from tests.conftest import statuses

pytestmark = pytest.mark.usefixtures("api_token")


def staff(username: str, *, permitted: bool) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if permitted:
        user.user_permissions.add(Permission.objects.get(codename="mark_failed_tenderrun"))
    return user


def session_client(user: User) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/")  # sets the csrftoken cookie, as the browser would have it
    return client, client.cookies["csrftoken"].value


def test_token_fixes_and_returns_the_documented_object(client, bearer, stuck):
    response = client.post(f"{CLEANUP}?timeout_minutes=10", **bearer)
    assert response.status_code == 200
    body = response.json()
    assert body["fixed_count"] == 1 and body["dry_run"] is False
    (run,) = body["stuck_runs"]
    assert run["id"] == stuck.id and run["project_id"] == stuck.project_id
    assert isinstance(run["running_minutes"], float) and run["started_at"].endswith("+00:00")
    assert body["message"] == "Fixed 1 stuck run."
    assert statuses(stuck) == ["failed"]
    assert MaintenanceAction.objects.get().actor == "api"


def test_dry_run_changes_nothing(client, bearer, stuck):
    body = client.post(f"{CLEANUP}?timeout_minutes=10&dry_run=1", **bearer).json()
    assert body["dry_run"] is True and body["fixed_count"] == 0
    assert [r["id"] for r in body["stuck_runs"]] == [stuck.id]
    assert statuses(stuck) == ["running"]


def test_a_kind_no_run_is_running_with_is_named_not_taken_for_an_all_clear(client, bearer, stuck):
    query = f"kind={stuck.kind}&kind=extract_risk&dry_run=1"
    body = client.post(f"{CLEANUP}?{query}", **bearer).json()
    assert body["kinds_not_running"] == ["extract_risk"]
    assert [r["id"] for r in body["stuck_runs"]] == [stuck.id]
    assert "No run of kind “extract_risk” is running" in body["message"]
    assert client.post(f"{CLEANUP}?dry_run=1", **bearer).json()["kinds_not_running"] == []


def test_message_follows_accept_language(client, bearer, stuck):
    body = client.post(CLEANUP, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9", **bearer).json()
    assert body["message"] == "已将 1 个卡住的任务标记为失败。"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": TOKEN},
        {"HTTP_AUTHORIZATION": "Bearer "},
    ],
    ids=["none", "wrong", "basic", "bare", "empty"],
)
def test_missing_or_wrong_credentials_are_401(client, headers, stuck):
    for url, method in ((CLEANUP, client.post), (HEALTH, client.get)):
        response = method(url, **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.content.decode()
    assert statuses(stuck) == ["running"]


def test_token_in_the_query_string_is_refused(client, stuck):
    response = client.post(f"{CLEANUP}?token={TOKEN}")
    assert response.status_code == 401
    response = client.post(f"{CLEANUP}?access_token={TOKEN}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 401
    assert statuses(stuck) == ["running"]


def test_token_auth_is_off_while_the_setting_is_empty(client, settings, stuck):
    settings.TENDEROPS_API_TOKEN = ""
    assert client.post(CLEANUP, HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.post(CLEANUP, HTTP_AUTHORIZATION="Bearer anything").status_code == 401
    assert statuses(stuck) == ["running"]


def test_staff_session_with_permission_and_csrf(stuck):
    client, csrf = session_client(staff("operator", permitted=True))
    assert client.post(CLEANUP).status_code == 403  # no CSRF token
    assert statuses(stuck) == ["running"]
    response = client.post(CLEANUP, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200 and response.json()["fixed_count"] == 1
    action = MaintenanceAction.objects.get()
    assert (action.actor, action.username) == ("user", "operator")
    assert client.get(HEALTH).status_code in {200, 503}


def test_staff_without_permission_is_403(stuck):
    client, csrf = session_client(staff("nobody", permitted=False))
    assert client.post(CLEANUP, HTTP_X_CSRFTOKEN=csrf).status_code == 403
    assert client.get(HEALTH).status_code == 403
    assert statuses(stuck) == ["running"]


def test_a_viewer_reads_health_as_metrics_but_cannot_clean_up(stuck):
    viewer = staff("viewer", permitted=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenderrun"))
    client, csrf = session_client(viewer)
    assert client.get(HEALTH).status_code in {200, 503}
    assert client.post(CLEANUP, HTTP_X_CSRFTOKEN=csrf).status_code == 403
    assert statuses(stuck) == ["running"]


def test_non_staff_session_is_401(client, stuck):
    client.force_login(User.objects.create_user("outsider", password="pw"))
    assert client.post(CLEANUP).status_code == 401
    assert statuses(stuck) == ["running"]


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405(client, bearer, method, stuck):
    response = getattr(client, method)(CLEANUP, **bearer)
    assert response.status_code == 405 and "POST" in response["Allow"]
    assert response.json() == {"error": "Method not allowed: use POST."}
    assert client.post(HEALTH, **bearer).status_code == 405
    assert statuses(stuck) == ["running"]


@pytest.mark.parametrize(
    "query",
    [
        "timeout_minutes=0",
        "timeout_minutes=-5",
        "timeout_minutes=abc",
        "timeout_minutes=",
        "timeout_minutes=1.5",
        "timeout_minutes=99999999999999999999",
        "dry_run=maybe",
        "dry_run=2",
        "kind=",
        f"kind={'x' * 300}",
    ],
)
def test_bad_parameters_are_400_and_change_nothing(client, bearer, query, stuck):
    response = client.post(f"{CLEANUP}?{query}", **bearer)
    assert response.status_code == 400
    assert "error" in response.json()
    assert statuses(stuck) == ["running"]
    assert not MaintenanceAction.objects.exists()


def test_health_is_503_until_the_monitor_has_run_then_200(client, bearer, stuck, make_run):
    make_run(started_ago=MIN)
    stale = client.get(HEALTH, **bearer)
    assert stale.status_code == 503
    assert stale.json()["status"] == "stale" and stale.json()["monitor_last_run_at"] is None
    assert stale.json()["stuck_count"] == 1 and stale.json()["running_count"] == 2
    monitor_tick()
    fresh = client.get(HEALTH, **bearer)
    assert fresh.status_code == 200
    body = fresh.json()
    assert body["status"] == "ok" and body["monitor_last_run_at"]
    assert (body["stuck_count"], body["running_count"]) == (0, 1)
    assert body["monitor_last_result"] == {"fixed_count": 1}


def test_a_fresh_install_is_starting_then_stale(client, bearer, settings, db):
    """Before the first tick a health check must not page anyone: "starting" (200, no alert)
    for two intervals after the monitor's schedule was made, unless a tick has finished
    meanwhile (even failed); stale (503, alerted) after."""
    from django_q.models import Task

    from runs.models import Alert
    from runs.schedules import MONITOR_SCHEDULE
    from tests.conftest import scheduled_ago
    from tests.test_commands import run_command

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    scheduled_ago(timedelta(seconds=90))  # migrate, then the cluster, 90 s ago
    starting = client.get(HEALTH, **bearer)
    assert (starting.status_code, starting.json()["status"]) == (200, "starting")
    assert "starting" in run_command("tenderops_watchdog")
    assert not Alert.objects.exists()
    scheduled_ago(timedelta(seconds=121))  # two intervals, no tick
    stale = client.get(HEALTH, **bearer)
    assert (stale.status_code, stale.json()["status"]) == (503, "stale")
    assert list(Alert.objects.values_list("event", flat=True)) == ["monitor_stale"]
    # Within the window, a first tick that finished without a heartbeat (it failed) ends it.
    scheduled_ago(timedelta(seconds=30))
    assert client.get(HEALTH, **bearer).json()["status"] == "starting"
    Task.objects.create(
        id="3f1c0e9d",
        name="tick",
        func="runs.tasks.fail_stuck_runs_task",
        group=MONITOR_SCHEDULE,
        started=Now(),
        stopped=Now(),
        success=False,
        result="DatabaseError",
    )
    assert client.get(HEALTH, **bearer).json()["status"] == "stale"


def test_health_turns_503_after_three_missed_intervals(client, bearer, settings, db):
    settings.TENDEROPS_MONITOR_INTERVAL_MINUTES = 2
    monitor_tick()
    beat = Heartbeat.objects.get(name=MONITOR)
    beat.last_finished_at -= timedelta(minutes=5, seconds=50)
    beat.save()
    assert client.get(HEALTH, **bearer).status_code == 200
    beat.last_finished_at -= timedelta(seconds=20)
    beat.save()
    response = client.get(HEALTH, **bearer)
    assert response.status_code == 503 and response.json()["stale_after_seconds"] == 360


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    timeout=st.one_of(st.none(), st.text(max_size=25), st.integers().map(str)),
    dry_run=st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["0", "1", "true"])),
    authorization=st.one_of(st.none(), header_text, header_text.map(lambda t: f"Bearer {t}")),
    use_token=st.booleans(),
)
def test_no_input_gives_a_500_and_a_400_changes_nothing(
    client, make_run, timeout, dry_run, authorization, use_token
):
    make_run(started_ago=30 * MIN)
    params = {
        k: v for k, v in {"timeout_minutes": timeout, "dry_run": dry_run}.items() if v is not None
    }
    headers = {}
    if use_token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    elif authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    before = (
        sorted(TenderRun.objects.values_list("pk", "status")),
        FailedRunRecord.objects.count(),
    )
    response = client.post(f"{CLEANUP}?{_encode(params)}", **headers)
    assert response.status_code in {200, 400, 401}
    assert response.headers["Content-Type"] == "application/json"
    if response.status_code != 200:
        after = (
            sorted(TenderRun.objects.values_list("pk", "status")),
            FailedRunRecord.objects.count(),
        )
        assert after == before


def _encode(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


# --- stricter input: what the API does not understand, it does not do -----------------------


@pytest.mark.parametrize("query", ["dry_run", "dry_run=", "dry_run=1", "dry_run=yes"])
def test_dry_run_present_without_a_value_is_a_dry_run(client, bearer, query, stuck):
    response = client.post(f"{CLEANUP}?{query}", **bearer)
    assert response.status_code == 200 and response.json()["dry_run"] is True
    assert statuses(stuck) == ["running"]


@pytest.mark.parametrize(
    "query",
    ["dryrun=1", "dry-run=1", "dry_run=1&dry_run=0", "timeout_minutes=5&timeout_minutes=6"],
)
def test_unknown_or_conflicting_parameters_are_400_and_change_nothing(client, bearer, query, stuck):
    response = client.post(f"{CLEANUP}?{query}", **bearer)
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    assert statuses(stuck) == ["running"]
    assert not MaintenanceAction.objects.exists()


@pytest.mark.parametrize("path", [f"{HEALTH}/", "/api/apps/tender/admin/nope", "/api/"])
def test_an_unknown_api_address_is_a_json_404(client, bearer, db, path):
    response = client.get(path, **bearer)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "No such endpoint" in response.json()["error"]


def test_repeating_a_parameter_with_the_same_value_is_fine(client, bearer, stuck):
    response = client.post(f"{CLEANUP}?dry_run=1&dry_run=1&kind=a&kind=b", **bearer)
    assert response.status_code == 200


def test_health_refuses_unknown_parameters(client, bearer, db):
    response = client.get(f"{HEALTH}?verbose=1", **bearer)
    assert response.status_code == 400
    assert "this endpoint takes no parameters" in response.content.decode()


@pytest.mark.parametrize(
    "query", ["kind=%00&dry_run=1", "dry_run=%00", "%00=1", f"kind={'x' * 2001}"]
)
def test_nul_bytes_and_overlong_values_are_a_json_400(client, bearer, query, stuck, caplog):
    response = client.post(f"{CLEANUP}?{query}", **bearer)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()
    assert statuses(stuck) == ["running"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_more_parameters_than_django_accepts_is_a_json_400(client, bearer, settings, stuck):
    query = "&".join(f"kind=k{n}" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.post(f"{CLEANUP}?{query}", **bearer)
    assert response.status_code == 400
    assert "error" in response.json()


def test_error_bodies_are_readable_utf8(client, stuck):
    response = client.post(CLEANUP, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 401
    text = response.content.decode()
    assert "\\u" not in text and "需要" in text


def test_a_token_on_a_server_without_one_is_told_why_it_cannot_work(client, settings, db):
    settings.TENDEROPS_API_TOKEN = ""
    settings.TENDEROPS_METRICS_TOKEN = ""
    for url, ask in ((CLEANUP, client.post), (HEALTH, client.get), ("/metrics", client.get)):
        response = ask(url, HTTP_AUTHORIZATION="Bearer s3cret")
        assert response.status_code == 401
        assert "accepts no token" in response.content.decode(), url
    health = client.get(HEALTH, HTTP_AUTHORIZATION="Bearer s3cret").json()["error"]
    assert "TENDEROPS_METRICS_TOKEN" in health  # it takes either
    settings.TENDEROPS_METRICS_TOKEN = "the-metrics-one"  # health takes it, the cleanup not
    wrong = client.get(HEALTH, HTTP_AUTHORIZATION="Bearer s3cret")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials."})
    assert (
        "accepts no token"
        in client.post(CLEANUP, HTTP_AUTHORIZATION="Bearer s3cret").json()["error"]
    )
    settings.TENDEROPS_API_TOKEN = "the-right-one"
    wrong = client.post(CLEANUP, HTTP_AUTHORIZATION="Bearer s3cret")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials."})
