"""Signs of life in the admin (runs.maintenance.liveness): the list's column and filter, the
detail page's observation, the stats page's table per kind."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F
from django.test import Client

from runs.models import Actor, RunObservation, TenderRun
from tests.conftest import silent_waiting_and_late
from tests.test_admin import LIST, MIN, STATS, staff_client


@pytest.fixture
def operator(db) -> Client:
    return staff_client("view_tenderrun", "mark_failed_tenderrun")


def test_signs_of_life_in_the_list_and_the_detail(operator, make_run, settings):
    from runs.maintenance import fail_stuck_runs, observe_active_runs

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    silent = make_run(started_ago=30 * MIN)
    waiting = make_run(status="pending", started_ago=45 * MIN)
    alive = make_run(started_ago=30 * MIN, progress=0.1)
    observe_active_runs()
    TenderRun.objects.filter(pk=alive.pk).update(progress=0.2)
    observe_active_runs()
    late = make_run(started_ago=30 * MIN, kind="review", run_type="review")
    fail_stuck_runs(actor=Actor.CLI, kinds=["review"])
    TenderRun.objects.filter(pk=late.pk).update(status="success")

    def listed(query: str) -> set[str]:
        html = operator.get(f"{LIST}?{query}").content.decode()
        return {run.pk for run in (silent, waiting, alive, late) if run.pk in html}

    assert listed("liveness=silent") == {silent.pk}
    assert listed("liveness=waiting") == {waiting.pk}
    assert listed("liveness=late") == {late.pk}
    listing = operator.get(LIST).content.decode()
    assert "Silent for" in listing
    # The stuck run, and it only, says so beside its silence (a run silent for hours looked
    # like any other running one: an operator trying the demo).
    rows = listing.split('<input type="checkbox" name="_selected_action"')[1:]
    stuck_rows = [row for row in rows if 'class="run-stuck"' in row]
    assert len(stuck_rows) == 1 and silent.pk in stuck_rows[0]
    detail = operator.get(f"{LIST}{alive.pk}/change/").content.decode()
    assert "changes seen: 1" in detail and "first seen" in detail
    assert "stuck since" not in detail
    # A pending run failed after TENDEROPS_FAIL_PENDING_AFTER_MINUTES is stuck too.
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 40
    rows = operator.get(LIST).content.decode().split('<input type="checkbox" name="_selected')
    assert any(waiting.pk in row and 'class="run-stuck"' in row for row in rows)
    assert "stuck since" in operator.get(f"{LIST}{silent.pk}/change/").content.decode()
    # Failed, then forgotten by the next observation: not "not observed", as if never watched.
    fail_stuck_runs(actor=Actor.CLI)
    observe_active_runs()
    failed = operator.get(f"{LIST}{silent.pk}/change/").content.decode()
    assert "Not observed now: tenderops observes pending and running runs only." in failed


def test_the_stats_page_shows_signs_of_life_per_kind(operator, make_run, settings):
    from runs.maintenance import late_finish_tick

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    silent_waiting_and_late(make_run)
    late_finish_tick()  # the sweep notes the late finish the page counts
    html = operator.get(STATS).content.decode()
    table = html[
        html.index('id="liveness-table"') : html.index(
            "</table>", html.index('id="liveness-table"')
        )
    ]
    assert (
        "liveness=silent&amp;kind=review" in table and "liveness=waiting&amp;kind=review" in table
    )
    assert "generate_docx" in table
    silent_list = operator.get(f"{LIST}?liveness=silent&kind=review").content.decode()
    assert silent_list.count('class="action-select"') == 1


def test_the_late_filter_lists_what_the_sweep_counts_once_the_failing_is_old(
    operator, make_run, settings
):
    """Past the sweep's window (TENDEROPS_MAX_RUN_MINUTES), the filter lists the late
    finishes the sweep noted, as the stats page counts them, and no longer the audited runs
    that finished too late to be noted."""
    from runs.maintenance import fail_stuck_runs, late_finish_tick
    from runs.models import MaintenanceAction

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    noted, unnoted = (make_run(started_ago=30 * MIN, kind="review") for _ in range(2))
    fail_stuck_runs(actor=Actor.CLI, kinds=["review"])
    TenderRun.objects.filter(pk=noted.pk).update(status="success")
    assert [record.run_id for record in late_finish_tick()] == [noted.pk]
    MaintenanceAction.objects.update(started_at=F("started_at") - timedelta(days=2))
    TenderRun.objects.filter(pk=unnoted.pk).update(status="success")
    html = operator.get(f"{LIST}?liveness=late").content.decode()
    assert noted.pk in html and unnoted.pk not in html


def test_a_run_failed_twice_then_finished_is_one_late_finish(make_run, settings):
    """A worker retrying the same row: failed, running again, failed again, then finished.
    The stats page counted its two audit records; the counter and the list count the run."""
    from django.db.models.functions import Now

    from runs.maintenance import fail_stuck_runs, late_finish_tick, observe_active_runs
    from runs.maintenance.counters import LATE_FINISHES, read
    from runs.maintenance.liveness import liveness_by_kind
    from runs.models import RunObservation
    from tests.conftest import back_to_running

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    run = make_run(started_ago=30 * MIN, kind="review")
    assert fail_stuck_runs(actor=Actor.CLI, kinds=["review"]).fixed_count == 1
    back_to_running(run.pk)
    observe_active_runs()  # its revival: a sign of life, then silent past the timeout
    RunObservation.objects.filter(run_id=run.pk).update(last_change_at=Now() - 11 * MIN)
    assert fail_stuck_runs(actor=Actor.CLI, kinds=["review"]).fixed_count == 1
    TenderRun.objects.filter(pk=run.pk).update(status="success")
    assert len(late_finish_tick()) == 2  # both records noted
    assert liveness_by_kind()["review"].late == {"24h": 1, "7d": 1, "30d": 1}
    assert read(LATE_FINISHES) == {(("kind", "review"),): 1}


def test_the_console_states_the_rule_in_force(operator, make_run, settings):
    """The cleanup page and the stats page's suggested timeouts say what the configured rule
    does: under silence a run that keeps writing is failed only past the maximum runtime."""
    from django.db.models.functions import Now

    from runs.maintenance.stats_snapshot import refresh_stats_snapshot
    from tests.test_admin import CLEANUP

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    # A successful review run of 40 minutes: longer than the timeout, within the maximum.
    done = make_run(started_ago=40 * MIN, kind="review", run_type="review", status="success")
    TenderRun.objects.filter(pk=done.pk).update(finished_at=Now())
    make_run(started_ago=30 * MIN)  # silent since its start
    refresh_stats_snapshot()

    cleanup = operator.get(CLEANUP).content.decode()
    assert "changed none of its status, progress and message" in cleanup
    assert "longer than 60 minutes, even if it still writes progress" in cleanup
    assert "silent for" in cleanup and re.search("30\xa0min 0\\d\xa0s", cleanup)
    stats = operator.get(STATS).content.decode()
    assert 'id="suggestion-silence"' in stats and "stat-warn" not in table_of(stats)
    assert "longest run × 1.2" in table_of(stats)

    settings.TENDEROPS_STUCK_RULE = "age"
    cleanup = operator.get(CLEANUP).content.decode()
    assert "running longer than its timeout: 10 minutes" in cleanup
    assert "A pending run is stuck" not in cleanup
    stats = operator.get(STATS).content.decode()
    assert 'id="suggestion-silence"' not in stats and "stat-warn" in table_of(stats)
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 45
    cleanup = operator.get(CLEANUP).content.decode()
    assert "A pending run is stuck when it has waited longer than 45 minutes" in cleanup


def table_of(html: str) -> str:
    start = html.index('id="duration-table"')
    return html[start : html.index("</table>", start)]


def test_a_projects_runs_link_says_what_it_opens(operator, project):
    html = operator.get("/admin/runs/tenderproject/").content.decode()
    assert f"?project={project.pk}" in html and "show its runs" in html


@pytest.mark.parametrize(
    "query",
    [
        "liveness=bogus",
        "stuck=maybe",
        "started=yesterday-ish",
        "started_from=2026-13-01",
        "action=-1",
        "action=１０",
        "audit=all",
    ],
)
def test_a_filter_value_it_does_not_offer_is_dropped_and_said(operator, make_run, query):
    runs = {make_run(started_ago=30 * MIN).pk, make_run(status="success").pk}
    response = operator.get(f"{LIST}?{query}&o=1")
    # Not kept in the address: every link of the list would carry it, an action or an
    # export would act under a filter that only looks set.
    assert response.status_code == 302 and response["Location"] == f"{LIST}?o=1"
    html = operator.get(response["Location"]).content.decode()
    assert "Ignored" in html and query.split("=")[1] in html
    assert all(pk in html for pk in runs)


@pytest.mark.parametrize(
    ("language", "silent_words", "max_words", "why"),
    [
        ("en", "silent for 3", "over the maximum runtime", "why"),
        ("zh-hans", "已静默 3", "超过最长运行时间", "判定依据"),
    ],
)
def test_the_audit_says_which_rule_failed_each_run(
    make_run, settings, language, silent_words, max_words, why
):
    """The product's contract: "the audit says which rule fired (silent N minutes, over max runtime,
    age)": on the action's page, in the run's history and in the action's CSV."""
    from runs.maintenance import fail_stuck_runs, observe_active_runs
    from runs.models import MaintenanceAction
    from tests.test_admin_export import read_csv

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    silent = make_run(started_ago=30 * MIN)  # silent since its start, 30 minutes ago
    writing = make_run(started_ago=90 * MIN, progress=0.1)
    observe_active_runs()
    TenderRun.objects.filter(pk=writing.pk).update(progress=0.2)  # still writing
    fail_stuck_runs(actor=Actor.CLI)
    action = MaintenanceAction.objects.get()
    viewer = staff_client("view_tenderrun", "view_maintenanceaction", "view_failedrunrecord")
    page = f"/admin/runs/maintenanceaction/{action.pk}/"

    def shown(path: str) -> str:
        return viewer.get(path, HTTP_ACCEPT_LANGUAGE=language).content.decode()

    audit = shown(f"{page}change/")
    assert f"<th>{why}</th>" in audit
    assert re.search(rf"{silent.pk}.*?{silent_words}\d", audit, re.S)
    assert re.search(rf"{writing.pk}.*?{max_words}", audit, re.S)
    assert re.search(rf"{silent_words}\d", shown(f"{LIST}{silent.pk}/change/"))
    assert max_words in shown(f"{LIST}{writing.pk}/change/")
    rows = read_csv(viewer.get(f"{page}export/", HTTP_ACCEPT_LANGUAGE=language))
    reasons = {row[0]: row[rows[0].index(why)] for row in rows[1:]}
    assert reasons[writing.pk] == max_words
    assert re.fullmatch(rf"{silent_words}\d.*", reasons[silent.pk])


def test_the_detail_page_says_when_a_run_is_stuck_if_nothing_changes(operator, make_run, settings):
    from runs.admin.display import short_time
    from runs.maintenance import observe_active_runs

    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    settings.TENDEROPS_STUCK_TIMEOUTS = {"review": 25}
    settings.TENDEROPS_MAX_RUN_MINUTES = 60
    silent = make_run(started_ago=5 * MIN, kind="review", run_type="review")
    old = make_run(started_ago=55 * MIN, progress=0.1)
    pending = make_run(status="pending", started_ago=5 * MIN)
    observe_active_runs()
    TenderRun.objects.filter(pk=old.pk).update(progress=0.2)  # still writing: the maximum
    observe_active_runs()  # runtime comes before its silence's timeout
    label = "stuck from, if nothing changes"

    def said(run) -> str:
        return operator.get(f"{LIST}{run.pk}/change/").content.decode()

    assert f"{label}: {short_time(silent.started_at + 25 * MIN)}" in said(silent)
    assert f"{label}: {short_time(old.started_at + 60 * MIN)}" in said(old)
    assert label not in said(pending)  # never failed unless asked
    settings.TENDEROPS_FAIL_PENDING_AFTER_MINUTES = 40
    assert f"{label}: {short_time(pending.started_at + 40 * MIN)}" in said(pending)
    queued = make_run(status="pending", started_ago=50 * MIN)
    observe_active_runs()
    TenderRun.objects.filter(pk=queued.pk).update(status="running")
    observe_active_runs()  # its pick-up: the maximum runtime counts from here
    picked_up = RunObservation.objects.get(run_id=queued.pk).running_since
    assert picked_up > queued.started_at + 49 * MIN
    assert f"running since: {short_time(picked_up)}" in said(queued)
    assert f"{label}: {short_time(picked_up + 10 * MIN)}" in said(queued)
    settings.TENDEROPS_STUCK_RULE = "age"  # stuck already: since when, not "from"
    assert f"stuck since: {short_time(old.started_at + 10 * MIN)}" in said(old)
    far = make_run(started_ago=MIN)  # a start in the year 9999: no time after it exists
    TenderRun.objects.filter(pk=far.pk).update(
        started_at=datetime(9999, 12, 31, 23, 55, tzinfo=UTC)
    )
    page = operator.get(f"{LIST}{far.pk}/change/")
    assert page.status_code == 200 and label not in page.content.decode()


@pytest.mark.parametrize("listed_ids", [1_000, 0])  # the runs named, or a subquery past that
def test_the_stuck_and_signs_of_life_filters_list_the_same_runs_either_way(
    operator, make_run, settings, monkeypatch, listed_ids
):
    from runs.admin import filters

    monkeypatch.setattr(filters, "LISTED_IDS", listed_ids)
    settings.TENDEROPS_STUCK_TIMEOUT_MINUTES = 10
    silent, alive = make_run(started_ago=30 * MIN), make_run(started_ago=MIN)
    waiting = make_run(status="pending", started_ago=45 * MIN)
    for query, expected in (
        ("stuck=yes", {silent}),
        ("stuck=no", {alive, waiting}),
        ("liveness=silent", {silent}),
        ("liveness=waiting", {waiting}),
    ):
        html = operator.get(f"{LIST}?{query}").content.decode()
        shown = {run.pk for run in (silent, alive, waiting) if run.pk in html}
        assert shown == {run.pk for run in expected}, query


def test_a_runs_audit_history_links_each_action(make_run):
    from runs.maintenance import fail_stuck_runs
    from runs.models import MaintenanceAction

    run = make_run(started_ago=30 * MIN)
    fail_stuck_runs(actor=Actor.CLI)
    action = MaintenanceAction.objects.get()
    auditor = staff_client("view_tenderrun", "view_maintenanceaction")
    page = auditor.get(f"{LIST}{run.pk}/change/").content.decode()
    assert (
        f'<a href="/admin/runs/maintenanceaction/{action.pk}/change/">fail stuck runs</a>' in page
    )


def test_an_empty_stuck_list_says_where_the_failed_runs_went(operator, make_run):
    from runs.maintenance import fail_stuck_runs

    run = make_run(started_ago=30 * MIN)
    html = operator.get(f"{LIST}?stuck=yes").content.decode()
    assert run.pk in html and 'id="nothing-stuck"' not in html
    fail_stuck_runs(actor=Actor.CLI)
    html = operator.get(f"{LIST}?stuck=yes").content.decode()
    assert 'id="nothing-stuck"' in html and 'href="?audit=any"' in html
    assert run.pk in operator.get(f"{LIST}?audit=any").content.decode()
