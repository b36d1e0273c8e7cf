"""Odd rows of a live table tenderops does not own: shown sanely, skipped by what they would
break, reported; every normal run still judged as usual."""

import io
import random
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models.functions import Now
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runs.infinite_timestamps import INFINITY, MINUS_INFINITY
from runs.maintenance import collect_stats, counters, fail_stuck_runs, monitor_tick, prune_runs
from runs.maintenance.stats_snapshot import refresh_stats_snapshot
from runs.models import Actor, Alert, FailedRunRecord, TenderRun
from tests.conftest import new_id, statuses
from tests.console import LIST, STATS, staff_client

MIN = timedelta(minutes=1)
CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
TOKEN = "odd-rows-token"

pytestmark = pytest.mark.postgres


def set_started_at(run: TenderRun, literal: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tender_runs SET started_at = %s::timestamptz WHERE id = %s", [literal, run.pk]
        )


@pytest.fixture
def normal_stuck(make_run) -> TenderRun:
    return make_run(started_ago=2 * 60 * MIN)


def test_kinds_too_long_for_an_index_stop_no_rescue_and_no_alert(make_run, settings):
    """Random CJK text barely compresses: a kind of 1,000 characters overflowed the unique
    indexes of the counters and the alert cooldowns, and every tick failed whole."""
    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    rng = random.Random(7)
    long_kind = "".join(chr(0x4E00 + rng.randrange(20_000)) for _ in range(10_000))
    twins = [long_kind[:1_000] + "甲", long_kind[:1_000] + "乙"]  # the same first 200
    runs = [make_run(started_ago=2 * 60 * MIN, kind=kind) for kind in [long_kind, *twins]]
    result = monitor_tick()
    assert result.fixed_count == 3 and statuses(*runs) == ["failed"] * 3
    (alert,) = Alert.objects.filter(event="monitor_failed")
    assert set(alert.facts["kinds"]) == {long_kind, *twins}
    failed = counters.read(counters.RUNS_FAILED)
    assert failed == {(("actor", "schedule"), ("kind", long_kind[:200])): 3}
    again = [make_run(started_ago=2 * 60 * MIN, kind=kind) for kind in twins]
    assert monitor_tick().fixed_count == 2 and statuses(*again) == ["failed"] * 2
    assert Alert.objects.filter(event="monitor_failed").count() == 1  # in its cooldown


@pytest.mark.parametrize("literal", ["-infinity", "infinity", "1970-01-01", "2999-01-01"])
def test_an_impossible_start_never_stops_the_rescue_of_the_others(
    literal, make_run, normal_stuck, client, settings, capsys
):
    settings.TENDEROPS_API_TOKEN = TOKEN
    odd = make_run()
    set_started_at(odd, literal)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    preview = client.post(f"{CLEANUP}?dry_run=1", **bearer)
    assert preview.status_code == 200
    assert [run["id"] for run in preview.json()["stuck_runs"]] == [normal_stuck.id]
    call_command("cleanup_stuck_runs", "--dry-run")
    assert normal_stuck.id in capsys.readouterr().out

    assert monitor_tick().fixed_count == 1
    assert statuses(normal_stuck, odd) == ["failed", "running"]
    assert client.post(CLEANUP, **bearer).json()["fixed_count"] == 0


def test_infinite_timestamps_load_as_the_extremes(make_run):
    future, past = make_run(), make_run()
    set_started_at(future, "infinity")
    set_started_at(past, "-infinity")
    future.refresh_from_db()
    past.refresh_from_db()
    assert (future.started_at, past.started_at) == (INFINITY, MINUS_INFINITY)


def test_years_python_cannot_hold_are_shown_as_such_not_as_infinity(make_run, admin_client):
    """The year 200000 was shown as "infinity", which psql contradicted."""
    later, earlier, endless = make_run(), make_run(), make_run()
    set_started_at(later, "200000-01-01")
    set_started_at(earlier, "4000-01-01 BC")
    set_started_at(endless, "infinity")
    pages = {
        run: admin_client.get(f"/admin/runs/tenderrun/{run.pk}/change/").content.decode()
        for run in (later, earlier, endless)
    }
    assert "after the year 9999" in pages[later] and "infinity" not in pages[later]
    assert "before the year 1" in pages[earlier] and "infinity" not in pages[earlier]
    assert "infinity" in pages[endless]


def test_stats_count_impossible_starts_and_stay_whole(make_run, normal_stuck):
    for literal in ("infinity", "-infinity"):
        for status in ("running", "success", "failed"):
            run = make_run(status=status, finished_at=None)
            set_started_at(run, literal)
    stats = collect_stats()
    assert stats.impossible_starts == 2  # the running ones: the finished need nobody
    assert stats.stuck == 1


def test_prune_never_deletes_a_run_started_at_minus_infinity(make_run):
    odd = make_run(status="failed")
    set_started_at(odd, "-infinity")
    expired = make_run(status="failed", started_ago=timedelta(days=400))
    result = prune_runs(actor=Actor.CLI)
    assert result.total == 1
    assert statuses(odd, expired) == ["failed", "<deleted>"]
    assert prune_runs(actor=Actor.CLI, dry_run=True).total == 0


@pytest.mark.parametrize("kind", ["", "   ", "\t"])
def test_an_empty_kind_counts_as_missing(kind, make_run, settings):
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 60}
    blank = make_run(run_type="review", kind=kind, started_ago=30 * MIN)
    plain = make_run(run_type="review", kind=None, started_ago=30 * MIN)
    assert blank.display_kind == "review"
    assert fail_stuck_runs(actor=Actor.CLI, dry_run=True).stuck_runs == []
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 20}
    found = fail_stuck_runs(actor=Actor.CLI)
    assert sorted(run.kind for run in found.stuck_runs) == ["review", "review"]
    assert statuses(blank, plain) == ["failed", "failed"]


# --- every entry point over odd values of every column -------------------------------------

ODD_VALUES = {
    "started_at": [
        "-infinity", "infinity", "1970-01-01", "2999-12-31", "4000-01-01 BC", "200000-01-01"
    ],
    "finished_at": [None, "-infinity", "infinity", "1900-01-01", "200000-01-01"],
    "progress": [None, "NaN", "Infinity", "-Infinity", "-5", "1e308"],
    "kind": [None, "", "   ", "\t\x01\x7f", "长" * 300, "x" * 1_000_000],
    "message": [None, "", "\x01\x1b[31m红\x7f", "消息" * 500_000],
    "error": [None, "", " ", "错" * 1_000_000],
    "status": ["running", "pending", "success", "failed", "cancelled", "", "RUNNING", " running"],
    "run_type": ["", "  ", "review", "x" * 10_000],
}  # fmt: skip

ODD_COLUMNS = list(ODD_VALUES)


def insert_odd_run(project, run_id: str, values: dict) -> None:
    columns = ", ".join(ODD_COLUMNS)
    placeholders = ", ".join(["%s"] * len(ODD_COLUMNS))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tender_runs (id, project_id, meta_json, {columns}) "
            f"VALUES (%s, %s, '{{}}'::jsonb, {placeholders})",
            [run_id, project.pk, *(values[column] for column in ODD_COLUMNS)],
        )


def entry_points_answer(client, run_id: str, bearer: dict) -> list[int]:
    list_url = "/admin/runs/tenderrun/"
    pages = [
        client.get(list_url),
        client.get(f"{list_url}?status=running"),
        client.get(f"{list_url}?stuck=yes"),
        client.get(f"{list_url}?started=impossible"),
        client.get(f"{list_url}?q={run_id}"),
        client.get(f"{list_url}{run_id}/change/"),
        client.get(f"{list_url}stats/"),
        client.get(f"{list_url}cleanup/"),
        client.post(f"{CLEANUP}?dry_run=1", **bearer),
        client.get("/api/apps/tender/admin/health", **bearer),
    ]
    return [page.status_code for page in pages]


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_odd_values_of_every_column_break_no_entry_point(data, project, make_run, settings):
    settings.TENDEROPS_API_TOKEN = TOKEN
    values = {column: data.draw(st.sampled_from(options)) for column, options in ODD_VALUES.items()}
    odd_id = new_id("tr_")
    insert_odd_run(project, odd_id, values)
    normal_stuck = make_run(started_ago=2 * 60 * MIN)
    client = Client(raise_request_exception=False)
    client.force_login(
        User.objects.get_or_create(username="odd", is_staff=True, is_superuser=True)[0]
    )

    answers = entry_points_answer(client, odd_id, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"})
    assert 500 not in answers and all(code in {200, 302, 503} for code in answers), answers
    out = io.StringIO()
    call_command("cleanup_stuck_runs", "--dry-run", "--json", stdout=out)
    assert normal_stuck.id in out.getvalue()
    monitor_tick()
    assert statuses(normal_stuck) == ["failed"]


def test_an_unknown_status_that_looks_known_is_shown_as_unknown(db, make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    make_run(status="running")
    odd = make_run(status="running ")
    list_html = viewer.get(LIST).content.decode()
    assert "run-status-unknown" in list_html and "&#x27;running &#x27;" in list_html
    refresh_stats_snapshot()
    stats_html = viewer.get(STATS).content.decode()
    assert "&#x27;running &#x27;" in stats_html  # its own row, not a second "running"
    filtered = viewer.get(f"{LIST}?status=running%20").content.decode()
    assert odd.pk in filtered and "&#x27;running &#x27;" in filtered


def test_a_run_finished_before_it_started_gets_no_negative_duration(make_run):
    from django.db.models import F

    viewer = staff_client("viewer", "view_tenderrun")
    run = make_run(status="success")
    TenderRun.objects.filter(pk=run.pk).update(finished_at=F("started_at") - timedelta(hours=2))
    html = viewer.get(f"{LIST}{run.pk}/change/").content.decode()
    assert "finished before it started" in html and "not started yet" not in html
    export = viewer.get(f"/admin/runs/tenderrun/export/?q={run.pk}")
    rows = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert run.pk in rows[1] and "-7200" not in rows[1]


def test_bidirectional_controls_are_shown_not_obeyed(make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    run = make_run(message="\u202etext override", status="failed")
    html = viewer.get(f"{LIST}?status=failed").content.decode()
    assert run.pk in html and "&lt;U+202E&gt;text override" in html
    assert "\u202e" not in html


def test_escape_sequences_and_a_huge_kind_reach_no_terminal(make_run, capsys):
    escapes = make_run(started_ago=2 * 60 * MIN, kind="\x1b]0;PWNED\x07\x1b[1;41mEVIL\x9b")
    huge = make_run(started_ago=2 * 60 * MIN, kind="k" * 5000)
    call_command("cleanup_stuck_runs", "--dry-run")
    out = capsys.readouterr().out
    assert escapes.pk in out and huge.pk in out
    assert "<U+001B>]0;PWNED<U+0007>" in out
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) < 0xA0 for c in out)
    assert max(len(line) for line in out.splitlines()) < 200


def test_bidirectional_controls_are_shown_not_obeyed_on_every_page(make_run, settings):
    settings.TENDEROPS_STATS_MAX_AGE_SECONDS = 0
    viewer = staff_client(
        "viewer", "view_tenderrun", "view_maintenanceaction", "view_failedrunrecord"
    )
    run = make_run(kind="rev\u202eiew", message="\u202egnp.exe", started_ago=2 * 60 * MIN)
    assert fail_stuck_runs(actor=Actor.CLI).fixed_count == 1
    refresh_stats_snapshot()
    action = FailedRunRecord.objects.get(run_id=run.pk).action_id
    audit = f"/admin/runs/maintenanceaction/{action}/change/"
    for page in (f"{LIST}{run.pk}/change/", STATS, f"{LIST}?status=failed", audit):
        response = viewer.get(page)
        html = response.content.decode()
        assert response.status_code == 200 and "\u202e" not in html, page
        assert "&lt;U+202E&gt;" in html, page


def test_every_text_column_of_a_run_is_shown_not_obeyed(project, settings):
    """Ids, run type, model, platform job id and JSON are the backend's text as well."""
    obeyed = "\u202e\x1b[2J"
    project.id = f"tp_{obeyed}"
    project.save()
    run = TenderRun.objects.create(
        id=f"tr_{obeyed}",
        project=project,
        run_type=f"rt{obeyed}",
        kind=f"a_kind_longer_than_the_column{obeyed}",
        status="running",
        model_id=f"model{obeyed}",
        platform_job_id=f"job{obeyed}",
        meta_json={"a": obeyed},
        result_json=[obeyed],
    )
    TenderRun.objects.filter(pk=run.pk).update(started_at=Now() - 2 * 60 * MIN)
    operator = staff_client(
        "operator",
        "view_tenderrun",
        "mark_failed_tenderrun",
        "view_maintenanceaction",
        "view_failedrunrecord",
    )
    mark = {"action": "mark_failed", "index": "0", "_selected_action": [run.pk]}
    pages = {
        "list": operator.get(LIST),
        "detail": operator.get(reverse("admin:runs_tenderrun_change", args=[run.pk])),
        "cleanup": operator.get(f"{LIST}cleanup/"),
        "confirmation": operator.post(LIST, mark),
    }
    fail_stuck_runs(actor=Actor.CLI)
    action = FailedRunRecord.objects.get(run_id=run.pk).action_id
    pages["audit"] = operator.get(reverse("admin:runs_maintenanceaction_change", args=[action]))
    pages["projects"] = operator.get(reverse("admin:runs_tenderproject_changelist"))
    pages["project"] = operator.get(reverse("admin:runs_tenderproject_change", args=[project.pk]))
    TenderRun.objects.filter(pk=run.pk).update(error=f"boom{obeyed}")  # the top error
    settings.TENDEROPS_STATS_MAX_AGE_SECONDS = 0
    refresh_stats_snapshot()
    pages["stats"] = operator.get(STATS)
    for name, response in pages.items():
        # A form's value carries the id as it is, to act on it: no one reads it there.
        html = re.sub(r' value="[^"]*"', "", response.content.decode())
        assert response.status_code == 200, name
        spots = [html[max(0, i - 150) : i + 20] for i, c in enumerate(html) if c in "\u202e\x1b"]
        assert not spots, (name, spots[:4])
        assert "&lt;U+202E&gt;" in html, name


@pytest.mark.parametrize("preset", ["today", "24h", "7d", "30d"])
def test_an_impossible_start_is_in_no_recent_window(preset, make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    recent = make_run(started_ago=timedelta(0))  # "today" even a second after midnight
    odd = {literal: make_run() for literal in ("infinity", "2999-01-01")}
    for literal, run in odd.items():
        set_started_at(run, literal)
    html = viewer.get(f"{LIST}?started={preset}").content.decode()
    assert recent.pk in html
    assert not any(run.pk in html for run in odd.values())


def test_a_run_started_in_1970_shows_no_running_time(make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    run = make_run()
    set_started_at(run, "1970-01-01")
    html = viewer.get(f"{LIST}?started=impossible").content.decode()
    assert run.pk in html
    assert html.count('<span class="run-odd-value" title="Impossible start time">–</span>') == 2
    assert 'class="run-live"' not in html  # the page's clock would count 20,000 days


def test_an_empty_id_is_shown_without_a_link_and_breaks_no_page(project, make_run, admin_client):
    """The backend's ids are text, and the empty one is legal; no admin address can name it:
    every page that linked to a run or project by id answered 500 (NoReverseMatch)."""
    from runs.models import TenderProject

    operator = staff_client("operator", "view_tenderrun", "mark_failed_tenderrun")
    stuck = make_run(started_ago=2 * 60 * MIN)
    TenderRun.objects.filter(pk=stuck.pk).update(id="")
    result = fail_stuck_runs(actor=Actor.CLI)
    assert result.fixed_count == 1 and [run.id for run in result.stuck_runs] == [""]
    nameless = TenderProject.objects.create(id="", kb_id="kb", name="")
    orphan = TenderRun.objects.create(id=new_id("tr_"), project=nameless, status="running")

    empty_pick = {"action": "mark_failed", "index": "0", "_selected_action": "", "from_detail": "1"}
    assert operator.post(LIST, empty_pick).status_code == 302
    pages = {
        "audit": reverse("admin:runs_maintenanceaction_change", args=[result.action_id]),
        "project": reverse("admin:runs_tenderproject_change", args=[project.pk]),
        "run of the nameless project": reverse("admin:runs_tenderrun_change", args=[orphan.pk]),
    }
    for name, url in pages.items():
        assert admin_client.get(url).status_code == 200, name
    audit = admin_client.get(pages["audit"]).content.decode()
    assert '"run-free-text"><code>–</code></td>' in audit  # the failed run, without a link


def test_json_too_deep_or_too_big_for_python_breaks_no_page(project, make_run, admin_client):
    """The backend's JSON may nest thousands deep or hold an integer of thousands of digits:
    valid for PostgreSQL, an error for Python's reader (the run's page, the projects list,
    a project's page and the runs list's project search answered 500)."""
    deep, huge = "[" * 3000 + "]" * 3000, '{"n": ' + "9" * 5000 + "}"
    run = make_run(started_ago=MIN)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tender_runs SET meta_json = %s::jsonb, result_json = %s::jsonb WHERE id = %s",
            [deep, huge, run.pk],
        )
        cursor.execute(
            "UPDATE tender_projects SET meta_json = %s::jsonb WHERE id = %s", [deep, project.pk]
        )
    detail = admin_client.get(f"{LIST}{run.pk}/change/")
    assert detail.status_code == 200
    assert "[[[[" in detail.content.decode() and "9" * 4000 in detail.content.decode()
    for page in (
        reverse("admin:runs_tenderproject_changelist"),
        reverse("admin:runs_tenderproject_changelist") + "?q=x",
        reverse("admin:runs_tenderproject_change", args=[project.pk]),
        "/admin/autocomplete/?app_label=runs&model_name=tenderrun&field_name=project&term=",
    ):
        assert admin_client.get(page).status_code == 200, page
