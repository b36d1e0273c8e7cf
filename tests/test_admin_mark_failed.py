"""The admin's confirmed actions: "mark selected runs failed" and the stuck-run cleanup
button, each a confirmation page whose promise confirming keeps."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.utils import timezone

from runs.models import FailedRunRecord, MaintenanceAction, TenderRun
from tests.conftest import back_to_running, confirmed_mark_failed, statuses
from tests.console import staff_client
from tests.test_odd_rows import set_started_at

LIST = "/admin/runs/tenderrun/"
CLEANUP = "/admin/runs/tenderrun/cleanup/"
MIN = timedelta(minutes=1)


@pytest.fixture
def operator(db) -> Client:
    return staff_client("staff-2", "view_tenderrun", "mark_failed_tenderrun")


def promise_in(html: str) -> dict:
    """The promise a confirmation page signs, as its form posts it back."""
    return {"promise": re.search(r'name="promise" value="([^"]*)"', html).group(1)}


def test_confirming_never_fails_runs_the_page_did_not_show(operator, make_run):
    shown = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    post = {"action": "mark_failed", "select_across": "1", "index": "0"}
    post["_selected_action"] = [shown[0].pk]
    page = operator.post(f"{LIST}?status=running", post).content.decode()
    assert "3 runs will be marked failed" in page
    # Each run as the list shows it: its page a click away, how long it has been silent.
    assert f'href="{LIST}{quote(shown[0].pk)}/change/"' in page
    assert re.search(r'<td class="numeric"><span class="run-live"[^>]*>30\xa0min', page)
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    newcomers = [make_run(started_ago=MIN) for _ in range(50)]

    again = operator.post(f"{LIST}?status=running", confirm)
    html = again.content.decode()
    assert again.status_code == 200 and "53 runs will be marked failed" in html
    assert "50 more runs match the selection" in html
    assert set(statuses(*shown, *newcomers)) == {"running"}

    TenderRun.objects.filter(pk=shown[1].pk).update(status="success")
    final = operator.post(f"{LIST}?status=running", {**confirm, **promise_in(html)}, follow=True)
    assert "52 runs marked failed" in final.content.decode()
    assert statuses(*shown, *newcomers) == ["failed", "success", "failed"] + ["failed"] * 50


def test_the_confirmation_page_lists_every_run_it_promises(operator, make_run):
    runs = [make_run(started_ago=(30 + n) * MIN) for n in range(150)]
    post = {"action": "mark_failed", "select_across": "1", "index": "0"}
    post["_selected_action"] = [runs[0].pk]
    page = operator.post(f"{LIST}?status=running", post).content.decode()
    assert "150 runs will be marked failed" in page
    assert all(run.pk in page for run in runs)  # once only a sample of 100 was listed
    assert "most recent" not in page
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    final = operator.post(f"{LIST}?status=running", confirm, follow=True)
    assert "150 runs marked failed" in final.content.decode()


def test_runs_deleted_before_the_confirmation_are_said_to_be_gone(operator, make_run):
    """The backend deletes a project's runs with it, between the page and its confirmation."""
    runs = [make_run(started_ago=30 * MIN) for _ in range(2)]
    project = runs[0].project_id
    post = {"action": "mark_failed", "select_across": "1", "index": "0"}
    post["_selected_action"] = [runs[0].pk]
    page = operator.post(f"{LIST}?project={project}", post).content.decode()
    TenderRun.objects.filter(pk__in=[run.pk for run in runs]).delete()
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    html = operator.post(f"{LIST}?project={project}", confirm, follow=True).content.decode()
    assert "0 runs marked failed" in html
    assert "2 runs the page listed are no longer in the table" in html


def test_a_tampered_or_missing_promise_changes_nothing(operator, make_run):
    run = make_run(started_ago=30 * MIN)
    other = make_run(started_ago=30 * MIN)
    for promise in ("", "forged", promise_in('name="promise" value="x"')["promise"]):
        post = confirmed_mark_failed(run.pk, other.pk, reason="r")
        response = operator.post(LIST, {**post, "promise": promise})
        assert response.status_code == 200 and "no longer valid" in response.content.decode()
    assert statuses(run, other) == ["running", "running"]


def test_the_cleanup_button_fails_only_what_its_preview_listed(operator, make_run):
    listed = make_run(started_ago=30 * MIN)
    page = operator.get(CLEANUP).content.decode()
    assert listed.id in page
    later = make_run(started_ago=40 * MIN)  # stuck too, but not on the page
    response = operator.post(CLEANUP, promise_in(page), follow=True)
    assert "Fixed 1 stuck run" in response.content.decode()
    assert statuses(listed, later) == ["failed", "running"]


def test_the_cleanup_button_says_which_listed_runs_were_no_longer_stuck(operator, make_run):
    listed = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    page = operator.get(CLEANUP).content.decode()
    # Before the operator confirms, the monitor fails one run and a worker revives another.
    TenderRun.objects.filter(pk=listed[0].pk).update(status="failed")
    TenderRun.objects.filter(pk=listed[1].pk).update(started_at=timezone.now() - MIN)
    response = operator.post(CLEANUP, promise_in(page), follow=True)
    html = response.content.decode()
    assert "Fixed 1 of the 3 listed runs; 2 were no longer stuck" in html
    assert "No stuck runs found" not in html
    assert statuses(*listed) == ["failed", "running", "failed"]


def test_a_cleanup_page_posted_again_spares_runs_failed_since(operator, make_run, settings):
    """A run the page listed, failed by its first post (or by the monitor), that a worker
    then revived and that is stuck again: the page promised to fail it once, not again."""
    settings.TENDEROPS_STUCK_RULE = "age"  # revived, it is stuck again at once
    revived, other = make_run(started_ago=30 * MIN), make_run(started_ago=31 * MIN)
    page = promise_in(operator.get(CLEANUP).content.decode())
    assert "Fixed 2 stuck runs" in operator.post(CLEANUP, page, follow=True).content.decode()
    TenderRun.objects.filter(pk=revived.pk).update(status="running", finished_at=None)
    again = operator.post(CLEANUP, page, follow=True).content.decode()
    assert "Fixed 0 of the 2 listed runs; 2 were no longer stuck" in again
    assert statuses(revived, other) == ["running", "failed"]
    assert FailedRunRecord.objects.filter(run_id=revived.pk).count() == 1


def test_the_cleanup_button_says_which_listed_runs_were_deleted_meanwhile(operator, make_run):
    # The backend deletes a project's runs with it: such a run is gone, not "no longer stuck".
    listed = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    page = operator.get(CLEANUP).content.decode()
    TenderRun.objects.filter(pk=listed[0].pk).delete()
    TenderRun.objects.filter(pk=listed[1].pk).update(status="success")
    html = operator.post(CLEANUP, promise_in(page), follow=True).content.decode()
    assert "Fixed 1 of the 3 listed runs; 1 was no longer stuck" in html
    assert "1 run the page listed is no longer in the table (deleted meanwhile)" in html


def test_a_confirmation_posted_again_spares_runs_started_again_since(operator, make_run):
    # Double submit, or back and submit. The first time, one run had just finished (skipped)
    # and the other two were failed. Since, a worker started the finished one again (a new
    # start) and one failed run again as it was (the same start).
    restarted, resumed, untouched = (make_run(started_ago=30 * MIN) for _ in range(3))
    post = {"action": "mark_failed", "index": "0"}
    post["_selected_action"] = [restarted.pk, resumed.pk, untouched.pk]
    page = operator.post(LIST, post).content.decode()
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    TenderRun.objects.filter(pk=restarted.pk).update(status="success")
    first = operator.post(LIST, confirm, follow=True).content.decode()
    assert "2 runs marked failed, 1 run skipped" in first
    TenderRun.objects.filter(pk=restarted.pk).update(status="running", started_at=timezone.now())
    TenderRun.objects.filter(pk=resumed.pk).update(status="running")

    again = operator.post(LIST, confirm, follow=True).content.decode()
    assert "0 runs marked failed, 3 runs skipped" in again
    assert statuses(restarted, resumed, untouched) == ["running", "running", "failed"]
    assert MaintenanceAction.objects.count() == 1


def test_a_run_report_mode_recorded_since_the_page_is_still_marked_failed(
    operator, make_run, settings
):
    # A "would fail" record fails nothing: it must not spend the page's promise.
    from runs.maintenance import report_stuck_runs

    settings.TENDEROPS_MONITOR_MODE = "report"
    run = make_run(started_ago=30 * MIN)
    post = {"action": "mark_failed", "index": "0", "_selected_action": [run.pk]}
    page = operator.post(LIST, post).content.decode()
    assert report_stuck_runs().found_count == 1
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    assert "1 run marked failed" in operator.post(LIST, confirm, follow=True).content.decode()
    assert statuses(run) == ["failed"]


@pytest.mark.postgres
@pytest.mark.parametrize("literal", ["infinity", "-infinity", "4000-01-01 BC", "294276-01-01"])
def test_a_run_with_a_start_python_cannot_hold_can_be_marked_failed(operator, make_run, literal):
    # ... but not once a worker has started it again (a real start): another life.
    run, restarted = make_run(started_ago=MIN), make_run(started_ago=MIN)
    set_started_at(run, literal)
    set_started_at(restarted, literal)
    post = {"action": "mark_failed", "index": "0", "_selected_action": [run.pk, restarted.pk]}
    page = operator.post(LIST, post).content.decode()
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(page)}
    TenderRun.objects.filter(pk=restarted.pk).update(started_at=timezone.now() - MIN)
    done = operator.post(LIST, confirm, follow=True).content.decode()
    assert "1 run marked failed, 1 run skipped" in done
    assert statuses(run, restarted) == ["failed", "running"]


def test_runs_with_impossible_starts_are_not_called_young(operator, make_run):
    from datetime import UTC, datetime

    ancient = make_run(status="pending", started_ago=MIN)
    future = make_run(started_ago=MIN)
    TenderRun.objects.filter(pk=ancient.pk).update(started_at=datetime(1999, 1, 1, tzinfo=UTC))
    TenderRun.objects.filter(pk=future.pk).update(started_at=timezone.now() + timedelta(days=3))
    post = {"action": "mark_failed", "index": "0", "_selected_action": [ancient.pk, future.pk]}
    page = operator.post(LIST, post).content.decode()
    assert "2 runs will be marked failed" in page
    assert 'id="young-running"' not in page and 'id="young-pending"' not in page
    assert "run-not-stuck" not in page


def test_mark_failed_confirmation_then_action(operator, make_run):
    stuck = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    done = make_run(status="success", started_ago=40 * MIN)
    live = make_run(started_ago=MIN)
    # As the browser posts "select all": the ticked rows of the page, and select_across.
    post = {
        "action": "mark_failed",
        "select_across": "1",
        "index": "0",
        "_selected_action": [live.pk],
    }
    confirm = operator.post(f"{LIST}?started=24h&status=running", post)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "4 runs will be marked failed" in html
    assert "will be skipped" not in html and 'value="Yes, mark them failed"' in html
    assert 'name="select_across" value="1"' in html
    assert statuses(*stuck, live) == ["running"] * 4
    across = operator.post(
        f"{LIST}?started=24h&status=running",
        {**post, "confirm": "1", "reason": "all running of the last day", **promise_in(html)},
        follow=True,
    )
    assert "4 runs marked failed." in across.content.decode()
    assert "skipped" not in across.content.decode()
    assert statuses(*stuck, live) == ["failed"] * 4
    back_to_running(*[r.pk for r in [*stuck, live]])
    MaintenanceAction.objects.all().delete()

    selected = [stuck[0].pk, stuck[1].pk, done.pk]
    confirm = operator.post(LIST, {**post, "select_across": "0", "_selected_action": selected})
    assert "2 runs will be marked failed" in confirm.content.decode()
    promise = promise_in(confirm.content.decode())
    assert "1 selected run will be skipped" in confirm.content.decode()
    result = operator.post(
        LIST,
        {
            **post,
            "select_across": "0",
            "_selected_action": selected,
            "confirm": "1",
            "reason": "worker pod restarted",
            **promise,
        },
        follow=True,
    )
    assert result.status_code == 200
    assert "2 runs marked failed, 1 run skipped" in result.content.decode()
    assert statuses(*stuck, done, live) == ["failed", "failed", "running", "success", "running"]
    action = MaintenanceAction.objects.get()
    assert (action.kind, action.actor, action.reason) == (
        "mark_failed",
        "user",
        "worker pod restarted",
    )
    assert action.username == "staff-2"
    assert TenderRun.objects.get(pk=stuck[0].pk).message == "worker pod restarted"


def test_a_run_marked_failed_by_hand_is_not_said_to_have_timed_out(operator, make_run, settings):
    """A live run an operator fails never timed out: the stuck texts would tell its user so."""
    live = make_run(started_ago=MIN)
    confirm = operator.post(
        LIST, {"action": "mark_failed", "index": "0", "_selected_action": [live.pk]}
    )
    html = confirm.content.decode()
    textarea = html[html.index("<textarea") : html.index("</textarea>")]
    assert textarea.endswith(f">\n{settings.TENDEROPS_MARK_FAILED_MESSAGE}"), textarea  # offered
    post = confirmed_mark_failed(live.pk, reason=settings.TENDEROPS_MARK_FAILED_MESSAGE)
    operator.post(LIST, post)
    run = TenderRun.objects.get(pk=live.pk)
    assert (run.status, run.error, run.message) == (
        "failed",
        "运维人员手动标记为失败",
        "任务已被运维人员终止",
    )


@pytest.mark.parametrize("reason", ["pod\u202erestarted", "line\x1b[2Jcleared"])
def test_a_reason_the_frontend_would_obey_is_refused(operator, make_run, reason):
    """The reason becomes the backend's message, which its frontend shows users as it is."""
    run = make_run(started_ago=30 * MIN)
    response = operator.post(LIST, confirmed_mark_failed(run.pk, reason=reason))
    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    assert statuses(run) == ["running"]


def test_empty_reason_is_refused(operator, make_run):
    run = make_run(started_ago=30 * MIN)
    response = operator.post(LIST, confirmed_mark_failed(run.pk, reason="  "))
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert statuses(run) == ["running"]


def test_cleanup_button_previews_then_fails(operator, make_run):
    stuck, live = make_run(started_ago=30 * MIN), make_run(started_ago=MIN)
    preview = operator.get(CLEANUP)
    assert preview.status_code == 200 and stuck.id in preview.content.decode()
    assert statuses(stuck) == ["running"]
    done = operator.post(CLEANUP, promise_in(preview.content.decode()), follow=True)
    assert statuses(stuck, live) == ["failed", "running"]
    action = MaintenanceAction.objects.get()
    assert action.username == "staff-2"
    # The message says where the audit keeps what the cleanup overwrote.
    link = f'<a href="/admin/runs/maintenanceaction/{action.pk}/change/">Open its audit entry.</a>'
    assert link in done.content.decode()


def test_the_runs_skipped_are_counted_to_a_bound(operator, make_run, monkeypatch):
    """ "Select all" on a filter of millions of finished runs must not count them all: the
    skipped ones are counted up to a bound, and beyond it the page says "more than"."""
    from runs.maintenance import selection

    monkeypatch.setattr(selection, "SKIPS_COUNTED", 5)
    running = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    finished = [make_run(status="success", started_ago=40 * MIN) for _ in range(4)]
    post = {"action": "mark_failed", "select_across": "1", "index": "0"}
    post["_selected_action"] = [running[0].pk]
    html = operator.post(LIST, post).content.decode()
    assert "3 runs will be marked failed" in html
    assert "4 selected runs will be skipped" in html and "More than" not in html
    finished.append(make_run(status="success", started_ago=40 * MIN))
    html = operator.post(LIST, post).content.decode()
    assert "5 selected runs will be skipped" in html and "More than" not in html
    finished.append(make_run(status="success", started_ago=40 * MIN))
    html = operator.post(LIST, post).content.decode()
    assert "3 runs will be marked failed" in html
    assert "More than 5 selected runs will be skipped" in html
    assert statuses(*running, *finished) == ["running"] * 3 + ["success"] * 6
    # Confirming counts to the same bound (it counted the whole selection) and says so.
    confirm = {**post, "confirm": "1", "reason": "r", **promise_in(html)}
    done = operator.post(LIST, confirm, follow=True).content.decode()
    assert "3 runs marked failed, more than 5 runs skipped" in done
    assert statuses(*running) == ["failed"] * 3


def test_the_cleanup_page_says_when_it_shows_fewer_runs_than_it_fails(
    operator, make_run, monkeypatch
):
    """The page lists 200 runs and its button fails up to 1,000: it says so, and where the
    rest are, instead of failing runs the operator never saw without a word."""
    from runs.admin import views

    runs = [make_run(started_ago=(30 + n) * MIN) for n in range(3)]
    monkeypatch.setattr(views, "CLEANUP_ROWS_SHOWN", 3)
    assert 'id="rows-shown"' not in operator.get(CLEANUP).content.decode()
    monkeypatch.setattr(views, "CLEANUP_ROWS_SHOWN", 2)
    html = operator.get(CLEANUP).content.decode()
    assert "The table lists the first 2 of the 3 runs this page marks failed" in html
    assert f'<a href="{LIST}?stuck=yes">see them all in the runs list</a>' in html
    assert statuses(*runs) == ["running"] * 3
